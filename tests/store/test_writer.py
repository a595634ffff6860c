"""The group-commit writer: one failing write fails alone; nobody hears back before commit."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from sqlalchemy import Connection, event
from sqlalchemy.engine import make_url

from testfleet.store import Store
from testfleet.store import jobs as job_store
from testfleet.store.writer import CommitUnknown
from tests.store.conftest import CONNECT_TIMEOUT, postgres_server
from tests.store.helpers import add_job

pytestmark = pytest.mark.anyio


def boom(conn: Connection) -> None:
    """A write that changes the store, then fails."""
    add_job(conn, "doomed")
    raise RuntimeError("boom")


def names(conn: Connection) -> list[str]:
    """The names of every job, sorted."""
    rows, _ = job_store.list_jobs(conn, job_store.JobQuery(limit=1000))
    return sorted(r.name for r in rows)


async def test_a_failing_write_does_not_undo_the_others_in_its_batch(store: Store) -> None:
    results = await asyncio.gather(
        store.write(add_job, "a"),
        store.write(boom),
        store.write(add_job, "b"),
        return_exceptions=True,
    )
    assert isinstance(results[1], RuntimeError) and str(results[1]) == "boom"
    assert isinstance(results[0], int) and isinstance(results[2], int)
    assert await store.read(names) == ["a", "b"]


async def test_many_concurrent_writes_all_commit(store: Store) -> None:
    ids = await asyncio.gather(*(store.write(add_job, f"j{i:03}") for i in range(300)))
    assert len(set(ids)) == 300
    assert await store.read(names) == [f"j{i:03}" for i in range(300)]


async def test_the_store_carries_on_after_the_server_drops_its_connections(
    store: Store, db_url: str
) -> None:
    """Pooled connections the server closed (a restart, an idle timeout) cost nobody a
    failed read or write: reads run again on a fresh connection, writers ping first."""
    if store.is_sqlite:
        pytest.skip("SQLite has no server to drop connections")
    await store.write(add_job, "before")
    await asyncio.gather(*(store.read(names) for _ in range(8)))  # several pooled connections
    database = make_url(db_url).database
    admin = await asyncpg.connect(postgres_server(), timeout=CONNECT_TIMEOUT)
    try:
        dropped = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = $1",
            database,
        )
    finally:
        await admin.close()
    assert dropped >= 2
    assert await store.read(names) == ["before"]
    await store.write(add_job, "after")
    assert await store.read(names) == ["after", "before"]


async def test_writes_whose_commit_broke_off_are_not_run_again(store: Store) -> None:
    """If the connection breaks while a batch commits, nobody can tell whether it did: the
    callers hear so, and their writes are not run a second time."""
    if store.is_sqlite:
        pytest.skip("SQLite commits in-process: there is no connection to lose")
    engine = store._async_writer  # the hook goes on the writers' engine
    assert engine is not None
    broken: list[bool] = []

    def die_while_committing(conn: Connection) -> None:
        if not broken:
            broken.append(True)
            conn.exec_driver_sql("SELECT pg_terminate_backend(pg_backend_pid())")

    event.listen(engine.sync_engine, "commit", die_while_committing)
    try:
        results = await asyncio.gather(
            store.write(add_job, "a"), store.write(add_job, "b"), return_exceptions=True
        )
    finally:
        event.remove(engine.sync_engine, "commit", die_while_committing)
    assert broken
    assert all(isinstance(r, CommitUnknown) for r in results), results
    assert await store.read(names) == []  # not run again (and, here, not committed)
    await store.write(add_job, "after")
    assert await store.read(names) == ["after"]
