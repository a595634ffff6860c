"""Jobs: listing with filters and cursor pages; claiming across hubs with leases."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from testfleet.protocol.states import JobState
from testfleet.store import Store
from testfleet.store import jobs as job_store
from testfleet.store.jobs import CursorError, JobQuery
from tests.store.helpers import NOW, add_job, add_jobs, other_hubs, set_running

pytestmark = pytest.mark.anyio

LEASE = timedelta(seconds=15)


async def job_ids(store: Store, **filters: Any) -> list[int]:
    """The ids of one page of jobs matching `filters` (limit 100)."""
    rows, _ = await store.read(job_store.list_jobs, JobQuery(limit=100, **filters))
    return [row.id for row in rows]


def list_all(conn: Connection) -> list[Any]:
    """Every job row."""
    rows, _ = job_store.list_jobs(conn, JobQuery(limit=1000))
    return list(rows)


def add_varied_jobs(conn: Connection) -> list[int]:
    """Twelve jobs: names n0-n2, requestors u0/u1, tags, one minute apart from NOW."""
    ids = []
    for i in range(12):
        tags = ["nightly"] + (["smoke"] if i % 3 == 0 else []) + (["arm"] if i % 4 == 0 else [])
        ids.append(add_job(conn, f"n{i % 3}", tags, f"u{i % 2}", NOW + timedelta(minutes=i)))
    return ids


async def test_list_jobs_filters(store: Store) -> None:
    ids = await store.write(add_varied_jobs)
    newest_first = ids[::-1]

    def pick(*indexes: int) -> list[int]:
        return [ids[i] for i in sorted(indexes, reverse=True)]

    assert await job_ids(store) == newest_first
    assert await job_ids(store, tags=["smoke"]) == pick(0, 3, 6, 9)
    assert await job_ids(store, tags=["smoke", "arm"]) == pick(0)  # all tags must match
    assert await job_ids(store, tags=["nightly", "arm"]) == pick(0, 4, 8)
    assert await job_ids(store, tags=["nope"]) == []
    assert await job_ids(store, requestor="u1") == pick(1, 3, 5, 7, 9, 11)
    assert await job_ids(store, name="n2") == pick(2, 5, 8, 11)
    assert await job_ids(store, name="n0", requestor="u1", tags=["smoke"]) == pick(3, 9)
    window = {
        "created_after": NOW + timedelta(minutes=5),
        "created_before": NOW + timedelta(minutes=8),
    }
    assert await job_ids(store, **window) == pick(5, 6, 7)  # after inclusive, before not

    await store.write(job_store.update_job, ids[1], state=JobState.RUNNING)
    await store.write(job_store.update_job, ids[2], state=JobState.FAILED)
    assert await job_ids(store, states=["running"]) == pick(1)
    assert await job_ids(store, states=["running", "failed"]) == pick(1, 2)
    assert await job_ids(store, states=["queued"]) == [i for i in newest_first if i not in ids[1:3]]


async def test_cursor_pages_are_newest_first_without_duplicates(store: Store) -> None:
    ids = await store.write(add_jobs, 25)
    pages: list[list[int]] = []
    cursor: str | None = None
    for _ in range(5):
        rows, cursor = await store.read(job_store.list_jobs, JobQuery(limit=10, cursor=cursor))
        pages.append([row.id for row in rows])
        if cursor is None:
            break
    assert [len(page) for page in pages] == [10, 10, 5]
    assert [i for page in pages for i in page] == sorted(ids, reverse=True)


async def test_cursor_pages_keep_the_filters(store: Store) -> None:
    ids = await store.write(add_varied_jobs)
    first, cursor = await store.read(job_store.list_jobs, JobQuery(tags=["smoke"], limit=3))
    assert cursor is not None
    rest, end = await store.read(
        job_store.list_jobs, JobQuery(tags=["smoke"], limit=3, cursor=cursor)
    )
    assert [r.id for r in first] == [ids[9], ids[6], ids[3]]
    assert ([r.id for r in rest], end) == ([ids[0]], None)


async def test_an_exactly_full_last_page_has_no_next_cursor(store: Store) -> None:
    await store.write(add_jobs, 20)
    _, cursor = await store.read(job_store.list_jobs, JobQuery(limit=10))
    rows, end = await store.read(job_store.list_jobs, JobQuery(limit=10, cursor=cursor))
    assert (len(rows), end) == (10, None)


async def test_a_cursor_we_did_not_hand_out_is_refused(store: Store) -> None:
    await store.write(add_jobs, 2)
    # "aGVsbG8" is base64 of "hello"; "ag" of "j" without a number.
    for cursor in ("bogus", "!!!", "aGVsbG8", "ag", "é", "j1"):
        with pytest.raises(CursorError):
            await store.read(job_store.list_jobs, JobQuery(cursor=cursor))
    rows, _ = await store.read(job_store.list_jobs, JobQuery(cursor=""))  # "": the first page
    assert len(rows) == 2


async def test_a_cursor_beyond_64_bits_is_refused_as_a_cursor(store: Store) -> None:
    await store.write(add_jobs, 1)
    with pytest.raises(CursorError):
        await store.read(job_store.list_jobs, JobQuery(cursor=job_store.encode_cursor(2**63)))


async def test_queued_jobs_are_claimed_once_across_hubs(store: Store, db_url: str) -> None:
    ids = await store.write(add_jobs, 30)
    lease_until = NOW + LEASE
    async with other_hubs(db_url, 2) as (hub_a, hub_b):
        first, second = await asyncio.gather(
            hub_a.write(job_store.claim_jobs, "hub-a", NOW, lease_until, 20),
            hub_b.write(job_store.claim_jobs, "hub-b", NOW, lease_until, 20),
        )
    claimed = [c.job_id for c in first + second]
    assert sorted(claimed) == ids  # every job once, none twice
    assert all(c.fresh and c.descriptor == {"name": "j"} for c in first + second)
    owners = {row.id: row.owner for row in (await store.read(list_all))}
    assert {owners[c.job_id] for c in first} <= {"hub-a"}
    assert {owners[c.job_id] for c in second} <= {"hub-b"}
    assert await store.write(job_store.claim_jobs, "hub-c", NOW, lease_until, 50) == []


async def test_an_expired_lease_is_taken_over_and_a_live_one_is_not(store: Store) -> None:
    orphan, alive, finished = await store.write(add_jobs, 3)
    await store.write(set_running, orphan, "hub-a", NOW - timedelta(seconds=1))
    await store.write(set_running, alive, "hub-a", NOW + timedelta(minutes=1))
    await store.write(set_running, finished, "hub-a", NOW - timedelta(minutes=1))
    await store.write(job_store.update_job, finished, state=JobState.COMPLETED)
    later = NOW + LEASE

    # Without `orphans` a hub only takes queued jobs nobody owns.
    assert await store.write(job_store.claim_jobs, "hub-b", NOW, later, 10) == []

    taken = await store.write(job_store.claim_jobs, "hub-b", NOW, later, 10, orphans=True)
    assert [(c.job_id, c.fresh) for c in taken] == [(orphan, False)]
    rows = {row.id: row for row in await store.read(list_all)}
    assert (rows[orphan].owner, rows[orphan].lease_expires_at) == ("hub-b", later)
    assert (rows[alive].owner, rows[finished].owner) == ("hub-a", "hub-a")

    # Taken over, its lease is live again: nobody else takes it now.
    assert await store.write(job_store.claim_jobs, "hub-c", NOW, later, 10, orphans=True) == []


async def test_a_restarted_hub_takes_back_its_own_jobs(store: Store) -> None:
    mine, theirs = await store.write(add_jobs, 2)
    await store.write(set_running, mine, "hub-a", NOW + timedelta(minutes=1))
    await store.write(set_running, theirs, "hub-b", NOW + timedelta(minutes=1))
    later = NOW + timedelta(minutes=2)
    taken = await store.write(job_store.claim_jobs, "hub-a", NOW, later, 10, include_own=True)
    assert [(c.job_id, c.fresh) for c in taken] == [(mine, False)]


async def test_leases_are_renewed_by_their_owner_only(store: Store) -> None:
    (job,) = await store.write(add_jobs, 1)
    await store.write(set_running, job, "hub-a", NOW + LEASE)
    renewed: datetime = NOW + timedelta(minutes=5)
    await store.write(job_store.renew_job_leases, "hub-b", [job], NOW + timedelta(hours=1))
    await store.write(job_store.renew_job_leases, "hub-a", [job], renewed)
    row = await store.read(job_store.get_job, job)
    assert row is not None and row.lease_expires_at == renewed
    assert (
        await store.write(
            job_store.claim_jobs, "hub-b", NOW + timedelta(minutes=1), renewed, 10, orphans=True
        )
        == []
    )


def locked_state(conn: Connection, job_id: int) -> str:
    """The job's state, read with its row locked."""
    row = job_store.lock_job(conn, job_id)
    assert row is not None
    return str(row.state)


async def test_a_locked_read_waits_for_a_concurrent_change_and_sees_it(
    store: Store, db_url: str
) -> None:
    """What Stop decides on (finished or not) cannot be overtaken by a runner's commit."""
    if store.is_sqlite:
        pytest.skip("SQLite commits one write transaction at a time")
    job = await store.write(add_job, "racing")
    async with other_hubs(db_url, 1) as (other,):
        engine = create_async_engine(other.url)
        try:
            async with engine.connect() as held:
                transaction = await held.begin()
                await held.run_sync(job_store.update_job, job, state=JobState.COMPLETED)
                locked = asyncio.create_task(store.write(locked_state, job))
                await asyncio.sleep(0.5)
                assert not locked.done(), "the locked read did not wait for the other writer"
                await transaction.commit()
            assert await asyncio.wait_for(locked, 10) == JobState.COMPLETED
        finally:
            await engine.dispose()
