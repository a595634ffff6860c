"""Agents registering in batches (`agent_ops.register_agents`): each agent's result is what it
would be alone (new or known agent, its devices synced, its tasks reconciled, its token
checked), and one agent refused leaves the others registered."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import Connection

from testfleet.hub.agents.arrivals import Arrivals
from testfleet.protocol.states import AgentState, RunState
from testfleet.store import Store, agent_ops
from testfleet.store import agents as agent_store
from testfleet.store import tasks as task_store
from testfleet.store import tokens as token_store
from testfleet.store.devices import DeviceOffer
from tests.store.helpers import NOW, add_agent, add_job, devices_by_id, set_running

pytestmark = pytest.mark.anyio


def offer(*names: str) -> list[DeviceOffer]:
    return [DeviceOffer(name=n, kind="host", capabilities={}, labels={}) for n in names]


def arrival(
    name: str, *devices: str, held: tuple[int, ...] = (), token: int | None = None
) -> agent_ops.Arrival:
    return agent_ops.Arrival(
        agent=agent_store.Arrival(
            name=name, instance_id=f"i-{name}", version="test", labels={"pool": "p"}
        ),
        devices=offer(*devices),
        held_tasks=list(held),
        bind_token=token,
    )


def agent_with_tasks(conn: Connection) -> tuple[int, int, int, int]:
    """Agent a1 (slots 0-2) with a pending, a running and a finished task: their ids."""
    agent_id = add_agent(conn, "a1")
    job_id = add_job(conn)
    set_running(conn, job_id, "hub-a", NOW + timedelta(minutes=5))
    new = [
        task_store.NewTask(f"a1:slot-{i}", f"slot-{i}", agent_id, [("s", "echo")]) for i in range(3)
    ]
    pending, running, finished = task_store.create_tasks(conn, job_id, 1, 0, 1, new)
    task_store.set_task_state(conn, running.id, RunState.RUNNING, at=NOW)
    task_store.set_task_state(conn, finished.id, RunState.PASSED, at=NOW)
    return agent_id, pending.id, running.id, finished.id


async def test_a_batch_registers_new_and_known_agents_each_as_alone(store: Store) -> None:
    agent_id, pending, running, finished = await store.write(agent_with_tasks)
    results = await store.write(
        agent_ops.register_agents,
        [
            arrival("new-1", "d0", "d1"),
            arrival("a1", "slot-0", "slot-9", held=(finished, 424242)),  # restarted
            arrival("new-2"),
        ],
        hub="hub-b",
        now=NOW,
    )
    new1, a1, new2 = results
    assert isinstance(new1, agent_ops.Registration) and isinstance(new2, agent_ops.Registration)
    assert isinstance(a1, agent_ops.Registration)
    assert a1.agent.id == agent_id and new1.agent.id not in (agent_id, new2.agent.id)
    assert [t.id for t in a1.resend] == [pending]  # pending, not held: send again
    assert [t.id for t in a1.lost] == [running]  # running, not held: it restarted
    assert sorted(a1.stale) == sorted([finished, 424242])  # ended or unknown: stop them
    assert new1.resend == new1.lost == new1.stale == []

    def look(conn: Connection) -> tuple[dict[str, object], dict[str, object], RunState]:
        agents = {
            name: agent_store.get_agent(conn, r.agent.id)
            for name, r in zip(("new-1", "a1", "new-2"), results, strict=True)
            if isinstance(r, agent_ops.Registration)
        }
        running_task = task_store.get_task(conn, running)
        assert running_task is not None
        return agents, devices_by_id(conn), running_task.state

    agents, devices, running_state = await store.read(look)
    for record in agents.values():
        assert record is not None
        assert record.state == AgentState.ONLINE and record.hub == "hub-b"  # type: ignore[attr-defined]
    live = {d for d, rec in devices.items() if not rec.removed}  # type: ignore[attr-defined]
    assert live == {"new-1:d0", "new-1:d1", "a1:slot-0", "a1:slot-9"}
    assert {"a1:slot-1", "a1:slot-2"} <= set(devices) - live  # no longer offered: removed
    assert running_state == RunState.INCOMPLETE


async def test_one_refused_token_leaves_the_others_registered(store: Store) -> None:
    def tokens(conn: Connection) -> tuple[int, int]:
        mine, _ = token_store.create_token(conn, "for-b1", "agent", NOW, agent_name="b1")
        other, _ = token_store.create_token(conn, "for-x", "agent", NOW, agent_name="x")
        return mine, other

    mine, other = await store.write(tokens)
    results = await store.write(
        agent_ops.register_agents,
        [arrival("b1", "d", token=mine), arrival("b2", "d", token=other), arrival("b3", "d")],
        hub="hub-a",
        now=NOW,
    )
    assert isinstance(results[0], agent_ops.Registration)
    assert isinstance(results[1], agent_ops.RegistrationRefused)
    assert "not 'b2'" in results[1].reason
    assert isinstance(results[2], agent_ops.Registration)
    devices = await store.read(devices_by_id)
    assert set(devices) == {"b1:d", "b3:d"}


async def test_registrations_that_come_together_are_written_together(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    writes: list[int] = []
    real_write = store.write

    async def counted(fn: object, *args: object, **kwargs: object) -> object:
        if fn is agent_ops.register_agents:
            writes.append(len(args[0]))  # type: ignore[arg-type]
        return await real_write(fn, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(store, "write", counted)
    arrivals = Arrivals(store, "hub-a")
    names = [f"c{i}" for i in range(150)] + ["c0"]  # c0's second connection: a later batch
    results = await asyncio.gather(*(arrivals.register(arrival(n, "d")) for n in names))
    assert all(isinstance(r, agent_ops.Registration) for r in results)
    assert results[0].agent.id == results[-1].agent.id  # type: ignore[union-attr]
    assert sum(writes) == 151 and len(writes) <= 5 and max(writes) <= 64


async def test_a_batch_the_store_refuses_is_tried_one_by_one(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = agent_ops.register_agents

    def picky(conn: Connection, batch: list[agent_ops.Arrival], **kwargs: object) -> object:
        if any(a.name == "bad" for a in batch):
            raise ValueError("this registration cannot be stored")
        return real(conn, batch, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(agent_ops, "register_agents", picky)
    arrivals = Arrivals(store, "hub-a")
    outcomes = await asyncio.gather(
        *(arrivals.register(arrival(n, "d")) for n in ("ok-1", "bad", "ok-2")),
        return_exceptions=True,
    )
    assert isinstance(outcomes[0], agent_ops.Registration)
    assert isinstance(outcomes[1], ValueError)
    assert isinstance(outcomes[2], agent_ops.Registration)
