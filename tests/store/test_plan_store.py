"""The test plan tables on SQLite and PostgreSQL (the shared sync state on PostgreSQL only):
sync counters count each key once, an instance's outcome is set once, outcomes are counted per
instance identity."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from testfleet.protocol.plan_api import InstanceState, TaskState
from testfleet.protocol.wire import utcnow
from testfleet.store import Store, plan_runs, plan_tasks, sync_state

pytestmark = pytest.mark.anyio


@pytest.fixture
async def pg(store: Store) -> AsyncIterator[asyncpg.Pool]:
    """Connections to the PostgreSQL store (the sync state lives there only)."""
    if not store.is_postgres:
        pytest.skip("the shared sync state is PostgreSQL's (SQLite: one hub, in memory)")
    dsn = make_url(store.url).set(drivername="postgresql").render_as_string(False)
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=8)
    try:
        yield pool
    finally:
        await pool.close()


async def _on(pool: asyncpg.Pool, fn: Any, *args: Any) -> Any:
    async with pool.acquire() as conn:
        return await fn(conn, *args)


async def test_signals_count_each_key_once_and_keep_its_number(pg: asyncpg.Pool) -> None:
    seqs, count = await _on(pg, sync_state.signal_entries, "r1", "ready", ["a", "b", None])
    assert (seqs, count) == ([1, 2, 3], 3)
    seqs, count = await _on(pg, sync_state.signal_entries, "r1", "ready", ["b", "c", "c"])
    assert (seqs, count) == ([2, 4, 4], 4)
    assert await _on(pg, sync_state.counter, "r1", sync_state.STATE, "ready") == 4
    assert await _on(pg, sync_state.counter, "r2", sync_state.STATE, "ready") == 0


async def test_concurrent_signal_batches_get_distinct_numbers(pg: asyncpg.Pool) -> None:
    batches = [[f"k{i}-{j}" for j in range(5)] for i in range(8)]
    results = await asyncio.gather(
        *(_on(pg, sync_state.signal_entries, "r", "s", keys) for keys in batches)
    )
    numbers = sorted(seq for seqs, _ in results for seq in seqs)
    assert numbers == list(range(1, 41))


async def test_messages_are_numbered_in_order_and_a_key_is_published_once(
    pg: asyncpg.Pool,
) -> None:
    first = await _on(pg, sync_state.publish_messages, "r", "t", [("x", '{"n":1}'), (None, "2")])
    again = await _on(pg, sync_state.publish_messages, "r", "t", [("x", '{"n":1}'), ("y", "3")])
    assert (first, again) == ([1, 2], [1, 3])
    assert await _on(pg, sync_state.read_messages, "r", "t", 0, 10) == [
        (1, '{"n":1}'),
        (2, "2"),
        (3, "3"),
    ]
    assert await _on(pg, sync_state.read_messages, "r", "t", 2, 10) == [(3, "3")]
    assert await _on(pg, sync_state.counters_of, "r") == [("topic", "t", 3)]
    assert await _on(pg, sync_state.idle_runs, utcnow() + timedelta(hours=1)) == ["r"]
    assert await _on(pg, sync_state.idle_runs, utcnow() - timedelta(hours=1)) == []
    await _on(pg, sync_state.drop_run, "r")
    assert await _on(pg, sync_state.counters_of, "r") == []


async def _run_with_instances(store: Store, run_id: str) -> None:
    def work(conn: object) -> None:
        plan_tasks.create_task(
            conn,  # type: ignore[arg-type]
            task_id=run_id,
            type="run",
            plan="p",
            case="c",
            runner="local:exec",
            builder="exec:python",
            composition={},
            requestor="me",
            server_id="hub",
            now=utcnow(),
        )
        plan_runs.place_instances(
            conn,  # type: ignore[arg-type]
            run_id,
            [
                plan_runs.PlacedInstance(1, "a", 1, "agent-1"),
                plan_runs.PlacedInstance(2, "a", 2, "agent-2"),
                plan_runs.PlacedInstance(3, "b", 1, "agent-1"),
            ],
        )

    await store.write(work)


async def test_an_outcome_reported_twice_counts_once(store: Store) -> None:
    await _run_with_instances(store, "run1")
    ok = plan_runs.Report(1, InstanceState.SUCCESS, 0)
    changed = await store.write(plan_runs.record_reports, "run1", None, [ok, ok], utcnow())
    assert changed == 1
    late = plan_runs.Report(1, InstanceState.FAILURE, 1, "second opinion")
    assert await store.write(plan_runs.record_reports, "run1", None, [late], utcnow()) == 0
    wrong_agent = plan_runs.Report(2, InstanceState.SUCCESS, 0)
    assert (
        await store.write(plan_runs.record_reports, "run1", "agent-1", [wrong_agent], utcnow()) == 0
    )
    lost = await store.write(plan_runs.fail_agent_instances, "run1", "agent-2", "lost", utcnow())
    assert lost == 1
    rest = await store.write(
        plan_runs.fail_unreported, "run1", InstanceState.FAILURE, "never reported", utcnow()
    )
    assert rest == 1
    assert await store.read(plan_runs.outcome_counts, "run1") == {"a": (1, 2), "b": (0, 1)}
    instances = {i.seq: i for i in await store.read(plan_runs.list_instances, "run1")}
    assert instances[1].state == InstanceState.SUCCESS and instances[2].error == "lost"


async def test_a_task_moves_forward_and_stops_at_its_end(store: Store) -> None:
    await _run_with_instances(store, "run2")
    now = utcnow()
    assert await store.write(plan_tasks.move_task, "run2", TaskState.PROCESSING, now, job_id=None)
    assert await store.write(plan_tasks.move_task, "run2", TaskState.COMPLETE, now, result={"x": 1})
    assert not await store.write(plan_tasks.move_task, "run2", TaskState.CANCELED, now)
    task = await store.read(plan_tasks.get_task, "run2")
    assert task is not None and task.state == TaskState.COMPLETE and task.result == {"x": 1}
    assert [entry["state"] for entry in task.history] == ["scheduled", "processing", "complete"]
    found = await store.read(plan_tasks.list_tasks, plan_tasks.TaskQuery(states=["complete"]))
    assert [t.id for t in found] == ["run2"]
