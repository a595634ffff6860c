"""Times come back timezone-aware in UTC on both backends; naive ones are refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Connection, text
from sqlalchemy.exc import StatementError

from testfleet.store import Store
from testfleet.store import agents as agent_store
from testfleet.store import devices as device_store
from testfleet.store import jobs as job_store
from testfleet.store import tokens as token_store
from tests.store.helpers import NOW, add_agent, add_job, devices_by_id

pytestmark = pytest.mark.anyio

PLUS_TWO = timezone(timedelta(hours=2))


def raw_created_at(conn: Connection, job_id: int) -> str:
    """The stored value of a job's created_at as the database has it, as text."""
    value = conn.execute(
        text("SELECT created_at FROM jobs WHERE id = :id"), {"id": job_id}
    ).scalar_one()
    return str(value)


async def test_times_come_back_aware_in_utc(store: Store) -> None:
    at = datetime(2026, 1, 2, 3, 4, 5, 6000, tzinfo=PLUS_TWO)
    job_id = await store.write(add_job, "t", (), "me", at)
    job = await store.read(job_store.get_job, job_id)
    assert job is not None
    assert job.created_at == at
    assert job.created_at.tzinfo is UTC
    assert (job.created_at.hour, job.created_at.microsecond) == (1, 6000)
    # Stored as UTC: what the database holds reads 01:04 (03:04 at +02:00).
    assert (await store.read(raw_created_at, job_id)).startswith("2026-01-02 01:04:05.006")

    await store.write(add_agent, "a1", 1)
    await store.write(device_store.claim_devices, ["a1:slot-0"], job_id, at)
    lease = (await store.read(devices_by_id))["a1:slot-0"].lease_expires_at
    assert (lease, lease.tzinfo) == (at, UTC)
    (agent,) = await store.read(agent_store.list_agents)
    assert (agent.last_seen, agent.last_seen.tzinfo) == (NOW, UTC)
    token_id, _ = await store.write(token_store.create_token, "t", "viewer", at)
    token = await store.read(token_store.get_token, token_id)
    assert token is not None and token.created_at.tzinfo is UTC


async def test_filters_compare_instants_not_wall_clocks(store: Store) -> None:
    job_id = await store.write(add_job, "t", (), "me", datetime(2026, 1, 2, 12, tzinfo=UTC))
    # 13:30 at +02:00 is 11:30 UTC: before the job.
    rows, _ = await store.read(
        job_store.list_jobs,
        job_store.JobQuery(created_after=datetime(2026, 1, 2, 13, 30, tzinfo=PLUS_TWO)),
    )
    assert [r.id for r in rows] == [job_id]


async def test_a_naive_datetime_is_refused(store: Store) -> None:
    with pytest.raises(StatementError, match="naive"):
        await store.write(add_job, "t", (), "me", datetime(2026, 1, 2))
    rows, _ = await store.read(job_store.list_jobs, job_store.JobQuery())
    assert list(rows) == []  # nothing half-written
    with pytest.raises(StatementError, match="naive"):
        await store.read(
            job_store.list_jobs, job_store.JobQuery(created_before=datetime(2026, 1, 2))
        )
