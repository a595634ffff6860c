"""Deleting jobs: hidden at once (`job_deletions`), their rows and files removed in the
background in small transactions, so a job with a million events never blocks the store."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from sqlalchemy import Connection, and_, delete, exists, or_, select, true, update
from sqlalchemy.dialects import postgresql, sqlite

from testfleet.protocol.states import JobState
from testfleet.store.events import add_events, event_row
from testfleet.store.jobs import get_job
from testfleet.store.records import JobRecord
from testfleet.store.tables import (
    artifacts,
    devices,
    events,
    job_deletions,
    job_runs,
    job_tags,
    job_tests,
    jobs,
    steps,
    tasks,
    test_cases,
)


def is_deleted(conn: Connection, job_id: int) -> bool:
    """True once someone asked to delete the job."""
    return bool(conn.execute(select(exists().where(job_deletions.c.job_id == job_id))).scalar())


def visible_job(conn: Connection, job_id: int) -> JobRecord | None:
    """The job, unless it does not exist or is being deleted."""
    job = get_job(conn, job_id)
    if job is None or is_deleted(conn, job_id):
        return None
    return job


class DeleteOutcome(enum.Enum):
    """What a delete request did."""

    NOT_FOUND = "not_found"
    UNFINISHED = "unfinished"
    ACCEPTED = "accepted"


def request_deletion(
    conn: Connection, job_id: int, requestor: str, now: datetime
) -> tuple[DeleteOutcome, JobState | None]:
    """Hide a finished job at once and queue its removal (asking twice is fine)."""
    job = get_job(conn, job_id)
    if job is None:
        return DeleteOutcome.NOT_FOUND, None
    if not job.state.finished:
        return DeleteOutcome.UNFINISHED, job.state
    _queue(conn, [job_id], requestor, now)
    return DeleteOutcome.ACCEPTED, job.state


def _queue(conn: Connection, job_ids: Sequence[int], requestor: str, now: datetime) -> None:
    if not job_ids:
        return
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    rows = [{"job_id": i, "requested_at": now, "requested_by": requestor} for i in job_ids]
    conn.execute(dialect.insert(job_deletions).on_conflict_do_nothing(), rows)
    # A notice of no job (the jobs' own events go with them): lists of jobs read again.
    data = {"job_ids": list(job_ids), "by": requestor}
    add_events(conn, [event_row("jobs_deleted", now, data=data)])


def queue_expired(
    conn: Connection,
    now: datetime,
    default_days: float | None,
    tag_days: Mapping[str, float],
    limit: int = 1000,
) -> list[int]:
    """Queue the removal of finished jobs past their retention: a job with tags that have a
    retention of their own is kept the longest of those; any other job `default_days`."""
    finished = jobs.c.state.in_([s.value for s in JobState if s.finished])
    not_queued = ~exists().where(job_deletions.c.job_id == jobs.c.id)
    tagged = exists().where(job_tags.c.job_id == jobs.c.id, job_tags.c.tag.in_(list(tag_days)))
    conditions = []
    if default_days is not None:
        cutoff = now - timedelta(days=default_days)
        conditions.append(and_(jobs.c.ended_at < cutoff, ~tagged if tag_days else true()))
    if tag_days:
        kept = or_(
            *(
                and_(job_tags.c.tag == tag, jobs.c.ended_at >= now - timedelta(days=days))
                for tag, days in tag_days.items()
            )
        )
        still_kept = exists().where(job_tags.c.job_id == jobs.c.id, kept)
        conditions.append(and_(tagged, ~still_kept))
    if not conditions:
        return []
    query = (
        select(jobs.c.id)
        .where(finished, jobs.c.ended_at.is_not(None), not_queued, or_(*conditions))
        .order_by(jobs.c.id)
        .limit(limit)
    )
    expired = [int(job_id) for job_id in conn.execute(query).scalars()]
    _queue(conn, expired, "retention", now)
    return expired


def claim_deletions(
    conn: Connection, hub: str, now: datetime, lease_until: datetime, limit: int = 20
) -> list[int]:
    """Jobs to remove that no other hub is removing right now."""
    free = or_(job_deletions.c.claim_until.is_(None), job_deletions.c.claim_until < now)
    candidates = select(job_deletions.c.job_id).where(free).order_by(job_deletions.c.job_id)
    candidates = candidates.limit(limit)
    if conn.dialect.name == "postgresql":
        candidates = candidates.with_for_update(skip_locked=True)
    ids = [int(i) for i in conn.execute(candidates).scalars()]
    if ids:
        conn.execute(
            update(job_deletions)
            .where(job_deletions.c.job_id.in_(ids), free)
            .values(claimed_by=hub, claim_until=lease_until)
        )
    return ids


def delete_some(conn: Connection, job_id: int, batch: int = 5000) -> bool:
    """Remove up to `batch` rows of a job being deleted (events first, the job row last);
    True once it is all gone. Its files must be gone before (artifact rows go here)."""
    for table in (events, test_cases):
        some = select(table.c.id).where(table.c.job_id == job_id).limit(batch)
        if conn.execute(delete(table).where(table.c.id.in_(some.scalar_subquery()))).rowcount:
            return False
    job_tasks = select(tasks.c.id).where(tasks.c.job_id == job_id).scalar_subquery()
    conn.execute(delete(artifacts).where(artifacts.c.job_id == job_id))
    conn.execute(delete(steps).where(steps.c.task_id.in_(job_tasks)))
    for table in (tasks, job_tests, job_runs, job_tags):
        conn.execute(delete(table).where(table.c.job_id == job_id))
    conn.execute(update(jobs).where(jobs.c.retried_from == job_id).values(retried_from=None))
    conn.execute(
        update(devices).where(devices.c.holder_job_id == job_id).values(holder_job_id=None)
    )
    conn.execute(delete(job_deletions).where(job_deletions.c.job_id == job_id))
    conn.execute(delete(jobs).where(jobs.c.id == job_id))
    return True
