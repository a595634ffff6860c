"""Placement: local:exec on the local agent; cluster:agents within labels and resources."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from testfleet.hub.testplans.compose import ResolvedGroup, ResolvedRun
from testfleet.hub.testplans.placement import PlacementError, place
from testfleet.protocol.composition import RunConfig
from testfleet.store.plan_runs import HostSlot


def slot(agent: str, index: int = 0, free: bool = True, cpus: int = 4, **labels: str) -> HostSlot:
    caps: dict[str, Any] = {"cpus": cpus, "memory": 8 * 2**30}
    return HostSlot(agent, f"{agent}:slot-{index}", free, dict(labels), caps)


def run(
    runner: str, *groups: tuple[str, int, float, dict[str, str]], agent: str | None = None
) -> ResolvedRun:
    resolved = tuple(
        ResolvedGroup(gid, count, {}, cpu, 0, RunConfig(labels=labels))
        for gid, count, cpu, labels in groups
    )
    return ResolvedRun(
        plan="p",
        case="c",
        builder="exec:python",
        runner=runner,
        build_config={},
        total=sum(g.count for g in resolved),
        groups=resolved,
        run_config=RunConfig(agent=agent),
        composition={},
    )


def test_local_exec_puts_every_instance_on_the_local_agent_on_a_free_slot() -> None:
    placement = place(
        run("local:exec", ("a", 2, 0, {}), ("b", 3, 0, {})),
        [slot("here", 0, free=False), slot("here", 1), slot("there")],
        "here",
    )
    assert placement.slots == {"here": "here:slot-1"}
    assert [(i.seq, i.group_id, i.group_seq) for i in placement.instances] == [
        (1, "a", 1),
        (2, "a", 2),
        (3, "b", 1),
        (4, "b", 2),
        (5, "b", 3),
    ]


def test_local_exec_without_a_local_agent_needs_exactly_one_online() -> None:
    assert place(run("local:exec", ("a", 1, 0, {})), [slot("only")], None).slots == {
        "only": "only:slot-0"
    }
    with pytest.raises(PlacementError, match="local agent"):
        place(run("local:exec", ("a", 1, 0, {})), [slot("x"), slot("y")], None)
    with pytest.raises(PlacementError, match="not online"):
        place(run("local:exec", ("a", 1, 0, {})), [slot("x")], "gone")


def test_cluster_spreads_over_matching_agents_within_their_cpus() -> None:
    slots = [slot("a1", pool="x"), slot("a2", pool="x"), slot("b1", pool="y")]
    placement = place(run("cluster:agents", ("g", 6, 1.0, {"pool": "x"})), slots, None)
    assert Counter(i.agent for i in placement.instances) == {"a1": 3, "a2": 3}
    assert set(placement.slots) == {"a1", "a2"}
    with pytest.raises(PlacementError, match="do not fit"):
        place(run("cluster:agents", ("g", 9, 1.0, {"pool": "x"})), slots, None)
    with pytest.raises(PlacementError, match="no online agent has the labels"):
        place(run("cluster:agents", ("g", 1, 0, {"pool": "z"})), slots, None)
