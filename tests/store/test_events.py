"""Events: an agent's (agent_id, seq) is stored once; a job's events page by id.

(Hub and agent events are both appended with `add_events` and inserted when the
transaction commits.)
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from testfleet.store import Store
from testfleet.store import events as event_store
from testfleet.store.tables import events
from tests.store.helpers import NOW, add_agent, add_job, count_rows, other_hubs

pytestmark = pytest.mark.anyio


def agent_row(agent_id: int, seq: int, job_id: int, text: str = "") -> dict[str, Any]:
    """One log event sent by an agent."""
    return {
        "kind": "log",
        "at": NOW,
        "agent_id": agent_id,
        "agent_seq": seq,
        "job_id": job_id,
        "task_id": None,
        "data": {"text": text or f"line {seq}"},
    }


def setup(conn: Connection) -> tuple[int, int, int]:
    """Two agents and a job: (agent a1, agent a2, job)."""
    return add_agent(conn, "a1", 0), add_agent(conn, "a2", 0), add_job(conn)


async def test_an_agent_event_is_stored_once(store: Store) -> None:
    a1, a2, job = await store.write(setup)

    await store.write(event_store.add_events, [agent_row(a1, 7, job, "first")])
    await store.write(event_store.add_events, [agent_row(a1, 7, job, "sent again")])
    assert await store.read(count_rows, events) == 1
    (stored,) = await store.read(event_store.list_events, job)
    assert (stored.agent_seq, stored.data, stored.agent_name) == (7, {"text": "first"}, "a1")

    # The seq belongs to the agent: another agent's seq 7 is another event.
    await store.write(event_store.add_events, [agent_row(a2, 7, job, "other agent")])
    assert await store.read(count_rows, events) == 2


async def test_a_batch_of_agent_events_skips_the_stored_ones(store: Store) -> None:
    a1, _, job = await store.write(setup)
    await store.write(event_store.add_events, [agent_row(a1, s, job) for s in (1, 2)])
    await store.write(event_store.add_events, [agent_row(a1, s, job) for s in (2, 3, 1, 3)])
    stored = await store.read(event_store.list_events, job)
    assert [(e.agent_seq, e.data["text"]) for e in stored] == [
        (1, "line 1"),
        (2, "line 2"),
        (3, "line 3"),
    ]


async def test_two_hubs_storing_the_same_resent_events_store_them_once(
    store: Store, db_url: str
) -> None:
    a1, _, job = await store.write(setup)
    rows = [agent_row(a1, seq, job) for seq in range(1, 51)]
    async with other_hubs(db_url, 2) as (hub_a, hub_b):
        await asyncio.gather(
            hub_a.write(event_store.add_events, rows),
            hub_b.write(event_store.add_events, rows[::-1]),
        )
    stored = await store.read(event_store.list_events, job)
    assert sorted(e.agent_seq for e in stored) == list(range(1, 51))


async def test_list_events_pages_with_after(store: Store) -> None:
    a1, _, job = await store.write(setup)
    other_job = await store.write(add_job, "other")
    for seq in range(1, 8):
        await store.write(event_store.add_events, [agent_row(a1, seq, job)])
        if seq == 3:
            await store.write(event_store.add_events, [agent_row(a1, 100, other_job)])
    hub_event = event_store.event_row("job_state", NOW + timedelta(seconds=1), job_id=job)
    await store.write(event_store.add_events, [hub_event])

    pages: list[list[int]] = []
    after = 0
    while page := await store.read(event_store.list_events, job, after=after, limit=3):
        pages.append([e.id for e in page])
        after = page[-1].id
    assert [len(p) for p in pages] == [3, 3, 2]
    ids = [i for page in pages for i in page]
    assert ids == sorted(ids) and len(set(ids)) == 8

    everything = await store.read(event_store.list_events, job)
    assert [e.id for e in everything] == ids
    assert [e.kind for e in everything] == ["log"] * 7 + ["job_state"]
    assert [e.agent_name for e in everything] == ["a1"] * 7 + [None]
    assert await store.read(event_store.list_events, job, after=ids[-1]) == []
    logs = await store.read(event_store.list_events, job, after=ids[4], kinds=["log"])
    assert [e.data["text"] for e in logs] == ["line 6", "line 7"]
    (other,) = await store.read(event_store.list_events, other_job)
    assert other.agent_seq == 100


async def test_event_ids_become_visible_in_commit_order(store: Store, db_url: str) -> None:
    """A transaction holding uncommitted events keeps later events from committing ahead of
    them, so a reader following "after id N" never skips one. (SQLite: one writer at a time
    is the guarantee; here another hub's transaction holds its events uncommitted.)"""
    if store.is_sqlite:
        pytest.skip("SQLite commits one write transaction at a time")
    _, _, job = await store.write(setup)
    first = event_store.event_row("held", NOW, job_id=job)
    second = event_store.event_row("after", NOW, job_id=job)

    def insert_held(conn: Connection) -> None:
        event_store.add_events(conn, [first])
        event_store.flush_events(conn)

    async with other_hubs(db_url, 1) as (other,):
        engine = create_async_engine(other.url)
        try:
            async with engine.connect() as held:
                transaction = await held.begin()
                await held.run_sync(insert_held)  # ids taken, not yet committed
                later = asyncio.create_task(store.write(event_store.add_events, [second]))
                await asyncio.sleep(0.5)
                assert not later.done(), "a later transaction committed events ahead"
                assert await store.read(event_store.list_events, job) == []
                await transaction.commit()
            await asyncio.wait_for(later, 10)
        finally:
            await engine.dispose()
    stored = await store.read(event_store.list_events, job)
    assert [e.kind for e in stored] == ["held", "after"]
    assert stored[0].id < stored[1].id
