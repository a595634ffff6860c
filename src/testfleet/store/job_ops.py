"""The job API's transactions: submit, stop, retry; and the leases of the jobs a hub runs.

A request the store must refuse (stopping a finished job) comes back as a result, never as an
exception raised inside the write: an exception rolls back the whole group commit and every
other write in it runs again alone, so a burst of bad requests would cost everyone.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, select
from sqlalchemy.dialects import postgresql, sqlite

from testfleet.protocol.states import JobState
from testfleet.store import devices as device_store
from testfleet.store import jobs as job_store
from testfleet.store.events import add_events, discard_since, event_row, pending_mark
from testfleet.store.tables import idempotency_keys


def submit_job(
    conn: Connection,
    *,
    name: str,
    descriptor: dict[str, Any],
    tags: Sequence[str],
    runs: int,
    requestor: str,
    now: datetime,
    retried_from: int | None = None,
) -> int:
    """Store a new queued job with its `job_queued` event; returns its id."""
    job_id = job_store.insert_job(
        conn,
        name=name,
        descriptor=descriptor,
        tags=tags,
        runs=runs,
        requestor=requestor,
        now=now,
        retried_from=retried_from,
    )
    data = {"requestor": requestor, "retried_from": retried_from}
    add_events(conn, [event_row("job_queued", now, job_id=job_id, data=data)])
    return job_id


@dataclass(frozen=True)
class Submitted:
    """What a submission with an idempotency key did."""

    job_id: int | None
    replayed: bool = False
    """An earlier request with the same key made the job: it is not made again."""
    conflict: bool = False
    """The key was used before for another descriptor: nothing was made."""


def submit_job_once(
    conn: Connection,
    *,
    key: str,
    request_hash: str,
    name: str,
    descriptor: dict[str, Any],
    tags: Sequence[str],
    runs: int,
    requestor: str,
    now: datetime,
) -> Submitted:
    """Store a new job unless this requestor's `key` made one already (then that one's id).

    Two requests with one key racing (on two hubs) make one job: the second one's insert of
    the key fails, its job is rolled back (a savepoint), and it answers with the first's.
    """
    earlier = _keyed(conn, requestor, key)
    if earlier is not None:
        return _replay(earlier, request_hash)
    mark = pending_mark(conn)
    savepoint = conn.begin_nested()
    job_id = submit_job(
        conn,
        name=name,
        descriptor=descriptor,
        tags=tags,
        runs=runs,
        requestor=requestor,
        now=now,
    )
    inserted = conn.execute(
        _insert_ignoring_conflicts(conn).values(
            requestor=requestor,
            key=key,
            job_id=job_id,
            request_hash=request_hash,
            created_at=now,
        )
    )
    if inserted.rowcount == 1:
        savepoint.commit()
        return Submitted(job_id)
    savepoint.rollback()
    discard_since(conn, mark)  # the job_queued event of the job rolled back
    earlier = _keyed(conn, requestor, key)
    assert earlier is not None
    return _replay(earlier, request_hash)


def _keyed(conn: Connection, requestor: str, key: str) -> Any:
    query = select(idempotency_keys.c.job_id, idempotency_keys.c.request_hash).where(
        idempotency_keys.c.requestor == requestor, idempotency_keys.c.key == key
    )
    return conn.execute(query).first()


def _replay(earlier: Any, request_hash: str) -> Submitted:
    if earlier.request_hash != request_hash:
        return Submitted(None, conflict=True)
    return Submitted(int(earlier.job_id), replayed=True)


def _insert_ignoring_conflicts(conn: Connection) -> Any:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(idempotency_keys).on_conflict_do_nothing()


def forget_keys(conn: Connection, older_than: datetime) -> int:
    """Drop idempotency keys made before `older_than`."""
    statement = delete(idempotency_keys).where(idempotency_keys.c.created_at < older_than)
    return int(conn.execute(statement).rowcount)


def record_retry(
    conn: Connection, job_id: int, new_job_id: int, requestor: str, now: datetime
) -> None:
    """Note on a job that it was started again as `new_job_id`."""
    data = {"requestor": requestor, "new_job_id": new_job_id}
    add_events(conn, [event_row("job_retried", now, job_id=job_id, data=data)])


class StopOutcome(enum.Enum):
    """What a stop request did."""

    NOT_FOUND = "not_found"
    ALREADY_FINISHED = "already_finished"
    CANCELLED = "cancelled"
    """It had not started: it is cancelled at once."""
    CANCELLING = "cancelling"
    """Its runner stops it."""


@dataclass(frozen=True)
class StopResult:
    """The outcome of a stop request, and the job's state after it."""

    outcome: StopOutcome
    state: JobState | None = None


def request_stop(conn: Connection, job_id: int, requestor: str, now: datetime) -> StopResult:
    """Ask a job to stop: a job that never started is cancelled here, a running one is marked
    cancelling for its runner. The job's row is locked, so no runner's commit overtakes this."""
    job = job_store.lock_job(conn, job_id)
    if job is None:
        return StopResult(StopOutcome.NOT_FOUND)
    if job.state.finished:
        return StopResult(StopOutcome.ALREADY_FINISHED, job.state)
    rows = [event_row("job_stop_requested", now, job_id=job_id, data={"requestor": requestor})]
    if job.state == JobState.QUEUED and job.owner is None:
        error = "stopped before it started"
        job_store.update_job(
            conn,
            job_id,
            state=JobState.CANCELLED,
            ended_at=now,
            error=error,
            stop_requested=True,
        )
        data = {"state": JobState.CANCELLED, "error": error}
        rows.append(event_row("job_finished", now, job_id=job_id, data=data))
        add_events(conn, rows)
        return StopResult(StopOutcome.CANCELLED, JobState.CANCELLED)
    job_store.update_job(conn, job_id, state=JobState.CANCELLING, stop_requested=True)
    add_events(conn, rows)
    return StopResult(StopOutcome.CANCELLING, JobState.CANCELLING)


def fail_job(conn: Connection, job_id: int, error: str, now: datetime) -> None:
    """End a job as failed on the hub's authority (its runner crashed), devices given back."""
    device_store.release_job_devices(conn, job_id)
    job_store.update_job(conn, job_id, state=JobState.FAILED, ended_at=now, error=error)
    data = {"state": JobState.FAILED, "error": error}
    add_events(conn, [event_row("job_finished", now, job_id=job_id, data=data)])


@dataclass(frozen=True)
class Renewal:
    """What renewing a hub's leases found: devices whose holder's lease ran out (now free),
    and jobs of this hub that someone asked to stop through another hub."""

    expired: list[str]
    stopping: list[int]
    taken_over: list[int]
    """Jobs of this hub another hub took over (this hub's lease ran out: it was stalled)."""


def renew_leases(
    conn: Connection,
    owner: str,
    job_ids: list[int],
    now: datetime,
    job_ttl: float,
    device_ttl: float,
) -> Renewal:
    """Extend the leases on the jobs `owner` runs and the devices they hold; free devices
    whose lease ran out."""
    device_store.renew_leases(conn, job_ids, now + timedelta(seconds=device_ttl))
    expired = device_store.expire_leases(conn, now)
    job_store.renew_job_leases(conn, owner, job_ids, now + timedelta(seconds=job_ttl))
    return Renewal(
        expired=expired,
        stopping=job_store.stopping_jobs(conn, job_ids),
        taken_over=job_store.taken_over(conn, owner, job_ids),
    )
