"""Where a run's instances go: `local:exec` puts them all on the hub's local agent,
`cluster:agents` spreads each group over the online agents whose labels match, within each
agent's CPUs and memory (as its host slots report them), least loaded first.

An agent gets one task (on one of its host slots) that runs its whole share at once: the
instances meet at barriers, so they must all run together whatever the slot count.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from testfleet.hub.testplans.compose import ResolvedRun
from testfleet.store.plan_runs import HostSlot, PlacedInstance

LOCAL_EXEC = "local:exec"
CLUSTER_AGENTS = "cluster:agents"


class PlacementError(Exception):
    """The run cannot be placed on the agents there are; the message says why."""


@dataclass
class _Agent:
    name: str
    device_id: str
    labels: dict[str, str]
    cpus: float | None
    memory: int | None
    used_cpu: float = 0.0
    used_memory: int = 0
    placed: int = 0

    def fits(self, cpu: float, memory: int) -> bool:
        cpu_ok = self.cpus is None or self.used_cpu + cpu <= self.cpus + 1e-9
        memory_ok = self.memory is None or self.used_memory + memory <= self.memory
        return cpu_ok and memory_ok

    def load(self) -> float:
        shares = [self.placed / 1000.0]
        if self.cpus:
            shares.append(self.used_cpu / self.cpus)
        if self.memory:
            shares.append(self.used_memory / self.memory)
        return max(shares)


@dataclass(frozen=True)
class Placement:
    """Which host slot each chosen agent runs its share on, and every instance's place."""

    slots: dict[str, str]
    instances: list[PlacedInstance] = field(default_factory=list)


def _agents(slots: Sequence[HostSlot]) -> dict[str, _Agent]:
    """One entry per agent, on a free slot when it has one."""
    found: dict[str, _Agent] = {}
    for slot in sorted(slots, key=lambda s: (s.agent, not s.free, s.device_id)):
        if slot.agent in found:
            continue
        cpus = slot.capabilities.get("cpus")
        memory = slot.capabilities.get("memory")
        found[slot.agent] = _Agent(
            name=slot.agent,
            device_id=slot.device_id,
            labels=slot.labels,
            cpus=float(cpus) if isinstance(cpus, int | float) and cpus > 0 else None,
            memory=int(memory) if isinstance(memory, int | float) and memory > 0 else None,
        )
    return found


def place(run: ResolvedRun, slots: Sequence[HostSlot], local_agent: str | None) -> Placement:
    """Place every instance of `run`; PlacementError when the agents cannot hold them."""
    agents = _agents(slots)
    if run.runner == LOCAL_EXEC:
        return _place_local(run, agents, local_agent)
    return _place_spread(run, agents)


def _numbered(run: ResolvedRun, agent_of: list[list[str]]) -> Placement:
    instances: list[PlacedInstance] = []
    slots: dict[str, str] = {}
    seq = 0
    for group, agents in zip(run.groups, agent_of, strict=True):
        for group_seq, agent in enumerate(agents, 1):
            seq += 1
            instances.append(PlacedInstance(seq, group.id, group_seq, agent))
    return Placement(slots, instances)


def _place_local(run: ResolvedRun, agents: dict[str, _Agent], local_agent: str | None) -> Placement:
    name = run.run_config.agent or local_agent
    if name is None:
        if len(agents) != 1:
            online = ", ".join(sorted(agents)) or "none"
            raise PlacementError(
                "local:exec needs the hub's local agent (testfleet up starts one; testfleet hub "
                f"--local-agent NAME names one) or run_config.agent; online agents: {online}"
            )
        name = next(iter(agents))
    agent = agents.get(name)
    if agent is None:
        raise PlacementError(f"local:exec: agent {name!r} is not online with a host slot")
    placement = _numbered(run, [[name] * group.count for group in run.groups])
    placement.slots[name] = agent.device_id
    return placement


def _place_spread(run: ResolvedRun, agents: dict[str, _Agent]) -> Placement:
    if not agents:
        raise PlacementError("cluster:agents: no agent with a host slot is online")
    agent_of: list[list[str]] = []
    for group in run.groups:
        wanted = group.run_config.labels
        candidates = [
            a for a in agents.values() if all(a.labels.get(k) == v for k, v in wanted.items())
        ]
        if not candidates:
            raise PlacementError(f"group {group.id!r}: no online agent has the labels {wanted}")
        chosen: list[str] = []
        for _ in range(group.count):
            fitting = [a for a in candidates if a.fits(group.cpu, group.memory)]
            if not fitting:
                raise PlacementError(
                    f"group {group.id!r}: {group.count} instances of cpu {group.cpu:g} and "
                    f"memory {group.memory} bytes do not fit on the agents "
                    f"{', '.join(a.name for a in candidates)} ({len(chosen)} placed)"
                )
            best = min(fitting, key=lambda a: (a.load(), a.placed, a.name))
            best.used_cpu += group.cpu
            best.used_memory += group.memory
            best.placed += 1
            chosen.append(best.name)
        agent_of.append(chosen)
    placement = _numbered(run, agent_of)
    for instance in placement.instances:
        placement.slots.setdefault(instance.agent, agents[instance.agent].device_id)
    return placement
