"""An agent's arrival and loss, each one transaction over agents, devices and tasks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection

from testfleet.protocol.states import RunState
from testfleet.store import agents as agent_store
from testfleet.store import devices as device_store
from testfleet.store import hubs as hub_store
from testfleet.store import tasks as task_store
from testfleet.store import tokens as token_store
from testfleet.store.events import add_events, event_row
from testfleet.store.records import AgentRecord, TaskRecord
from testfleet.store.task_ends import end_tasks


@dataclass(frozen=True)
class RegistrationRefused:
    """Why an agent may not register (under that name, with that credential)."""

    reason: str


@dataclass(frozen=True)
class Registration:
    """An agent as registered, and its tasks reconciled with those it says it holds."""

    agent: AgentRecord
    resend: list[TaskRecord]
    """Pending tasks it does not hold: send them again."""
    lost: list[TaskRecord]
    """Running tasks it no longer holds (it restarted): now incomplete."""
    stale: list[int]
    """Tasks it holds that the hub has ended (or never knew): stop them on the agent."""


@dataclass(frozen=True)
class Arrival:
    """An agent asking to register: who it is, what it offers, what it holds."""

    agent: agent_store.Arrival
    devices: Sequence[device_store.DeviceOffer]
    held_tasks: Sequence[int]
    bind_token: int | None = None
    """An agent token's id: the token must be for this agent name, or is bound to it now
    if it is for none and no other credential has the name."""

    @property
    def name(self) -> str:
        """The agent's name."""
        return self.agent.name


def register_agent(
    conn: Connection,
    *,
    name: str,
    instance_id: str,
    version: str,
    labels: dict[str, str],
    devices: Sequence[device_store.DeviceOffer],
    held_tasks: Sequence[int],
    hub: str,
    now: datetime,
    bind_token: int | None = None,
) -> Registration | RegistrationRefused:
    """Record the agent and its devices, and reconcile its tasks with what it holds."""
    agent = agent_store.Arrival(name, instance_id, version, labels)
    arrival = Arrival(agent, devices, held_tasks, bind_token)
    return register_agents(conn, [arrival], hub=hub, now=now)[0]


def register_agents(
    conn: Connection, arrivals: Sequence[Arrival], *, hub: str, now: datetime
) -> list[Registration | RegistrationRefused]:
    """`register_agent` for several agents of distinct names (a few hundred at most), in one
    transaction and a handful of statements whatever their number: a reconnecting fleet
    registers in batches. The results are in the order of `arrivals`."""
    results: dict[str, Registration | RegistrationRefused] = {}
    admitted: list[Arrival] = []
    for arrival in arrivals:
        if arrival.bind_token is not None:
            refusal = token_store.bind_agent_name(conn, arrival.bind_token, arrival.name)
            if refusal is not None:
                results[arrival.name] = RegistrationRefused(refusal)
                continue
        admitted.append(arrival)
    if admitted:
        records = agent_store.register_agents(conn, [a.agent for a in admitted], hub=hub, now=now)
        device_store.sync_devices_of(
            conn, {records[a.name].id: (a.name, a.devices) for a in admitted}
        )
        unfinished = task_store.unfinished_tasks_of_agents(
            conn, [records[a.name].id for a in admitted]
        )
        held_ids = sorted({task_id for a in admitted for task_id in a.held_tasks})
        found = task_store.get_tasks(conn, held_ids) if held_ids else []
        known = {task.id: task for task in found}
        for arrival in admitted:
            agent = records[arrival.name]
            results[arrival.name] = _reconcile(
                conn, agent, arrival, unfinished.get(agent.id, []), known, now
            )
    return [results[arrival.name] for arrival in arrivals]


def _reconcile(
    conn: Connection,
    agent: AgentRecord,
    arrival: Arrival,
    unfinished: list[TaskRecord],
    known: dict[int, TaskRecord],
    now: datetime,
) -> Registration:
    """The agent's tasks set against those it says it holds."""
    held = set(arrival.held_tasks)
    resend: list[TaskRecord] = []
    lost: list[TaskRecord] = []
    for task in unfinished:
        if task.id not in held:
            (resend if task.state == RunState.PENDING else lost).append(task)
    if lost:
        reason = f"agent {arrival.name!r} no longer runs this task (it restarted)"
        end_tasks(conn, lost, RunState.INCOMPLETE, reason, now)
    stale = [task_id for task_id in held if task_id not in known or known[task_id].finished]
    return Registration(agent=agent, resend=resend, lost=lost, stale=stale)


@dataclass(frozen=True)
class LostAgent:
    """An agent declared lost, and its tasks that ended incomplete."""

    reason: str
    tasks: list[TaskRecord]


def lose_agent(
    conn: Connection,
    agent_id: int,
    reason: str,
    now: datetime,
    hub: str,
    hubs_alive_since: datetime,
    heard_until: datetime,
) -> LostAgent | None:
    """Mark the agent and its devices offline and its open tasks incomplete; `hub` is the
    hub it was connected to as the judge knows it.

    Changes nothing (None) if the agent registered again after `heard_until`, or is now
    connected to another hub that is alive (has beaten since `hubs_alive_since`).
    """
    agent = agent_store.get_agent(conn, agent_id, lock=True)
    if agent is not None:
        if agent.connected_at is not None and agent.connected_at > heard_until:
            return None
        if agent.hub != hub and hub_store.hub_alive(conn, agent.hub, hubs_alive_since):
            return None
    name = agent.name if agent is not None else str(agent_id)
    reason = f"agent {name!r} lost: {reason}"
    agent_store.set_agent_offline(conn, agent_id)
    device_store.set_devices_offline(conn, agent_id)
    open_tasks = task_store.unfinished_tasks_of_agent(conn, agent_id)
    end_tasks(conn, open_tasks, RunState.INCOMPLETE, reason, now)
    data = {"agent": name, "reason": reason, "tasks": [task.id for task in open_tasks]}
    add_events(conn, [event_row("agent_lost", now, data=data)])
    return LostAgent(reason=reason, tasks=open_tasks)
