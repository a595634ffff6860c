"""The group-commit writer: one failing write fails alone; nobody hears back before commit."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import Connection

from testfleet.store import Store
from testfleet.store import jobs as job_store
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
