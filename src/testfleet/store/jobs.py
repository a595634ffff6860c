"""Jobs, their runs and tests: insert, read, list, claim and lease.

Tasks and steps are in `tasks.py`; a job's whole tree for its status in `job_tree.py`.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, bindparam, exists, insert, select, update

from testfleet.protocol.states import JobState
from testfleet.store.prepared import prepared, update_row
from testfleet.store.records import JobRecord
from testfleet.store.tables import job_deletions, job_runs, job_tags, job_tests, jobs


class CursorError(ValueError):
    """A `cursor` that no page of ours handed out."""


@dataclass
class JobQuery:
    """Filters for listing jobs; every given filter must match (tags: all of them)."""

    states: Sequence[str] = ()
    tags: Sequence[str] = ()
    requestor: str | None = None
    name: str | None = None
    name_contains: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    limit: int = 50
    cursor: str | None = None


def encode_cursor(job_id: int) -> str:
    """An opaque cursor for the page after `job_id`."""
    return base64.urlsafe_b64encode(f"j{job_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The job id behind a cursor, or CursorError."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if not text.startswith("j"):
            raise ValueError
        job_id = int(text[1:])
        if not 0 < job_id < 2**63:
            raise ValueError
        return job_id
    except (ValueError, UnicodeDecodeError):
        raise CursorError(f"cursor {cursor!r} was not handed out by this API") from None


def insert_job(
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
    """Store a new queued job; returns its id."""
    result = conn.execute(
        prepared("insert_job", lambda: insert(jobs)),
        {
            "name": name,
            "state": JobState.QUEUED,
            "requestor": requestor,
            "descriptor": descriptor,
            "tags": list(tags),
            "runs_requested": runs,
            "created_at": now,
            "retried_from": retried_from,
            "stop_requested": False,
        },
    )
    job_id = int(result.inserted_primary_key[0])  # type: ignore[index]
    if tags:
        conn.execute(
            prepared("insert_tags", lambda: insert(job_tags)),
            [{"job_id": job_id, "tag": t} for t in tags],
        )
    return job_id


def get_job(conn: Connection, job_id: int) -> JobRecord | None:
    """One job."""
    statement = prepared("get_job", lambda: select(jobs).where(jobs.c.id == bindparam("id")))
    row = conn.execute(statement, {"id": job_id}).first()
    return JobRecord.from_row(row) if row is not None else None


def job_state(conn: Connection, job_id: int) -> JobState | None:
    """A job's state alone (None: no such job), read without a lock."""
    statement = prepared(
        "job_state", lambda: select(jobs.c.state).where(jobs.c.id == bindparam("id"))
    )
    state = conn.execute(statement, {"id": job_id}).scalar()
    return JobState(state) if state is not None else None


@dataclass(frozen=True)
class JobLock:
    """What a decision on a locked job needs: its state and owner."""

    state: JobState
    owner: str | None


def lock_job(conn: Connection, job_id: int) -> JobLock | None:
    """A job's state and owner, its row locked until the transaction ends (PostgreSQL; SQLite
    has one writer), so a decision taken on it cannot race another writer's change."""
    statement = prepared(
        "lock_job",
        lambda: (
            select(jobs.c.state, jobs.c.owner)
            .where(jobs.c.id == bindparam("id"))
            .with_for_update(key_share=True)
        ),
    )
    row = conn.execute(statement, {"id": job_id}).first()
    return JobLock(JobState(row.state), row.owner) if row is not None else None


def list_jobs(conn: Connection, query: JobQuery) -> tuple[list[JobRecord], str | None]:
    """A page of jobs, newest first, and the cursor of the next page (None on the last)."""
    statement = (
        select(jobs)
        .where(~exists().where(job_deletions.c.job_id == jobs.c.id))  # being deleted: gone
        .order_by(jobs.c.id.desc())
        .limit(query.limit + 1)
    )
    if query.cursor:
        statement = statement.where(jobs.c.id < decode_cursor(query.cursor))
    if query.states:
        statement = statement.where(jobs.c.state.in_(list(query.states)))
    if query.requestor:
        statement = statement.where(jobs.c.requestor == query.requestor)
    if query.name:
        statement = statement.where(jobs.c.name == query.name)
    if query.name_contains:
        statement = statement.where(jobs.c.name.icontains(query.name_contains, autoescape=True))
    if query.created_after:
        statement = statement.where(jobs.c.created_at >= query.created_after)
    if query.created_before:
        statement = statement.where(jobs.c.created_at < query.created_before)
    for tag in query.tags:
        statement = statement.where(
            exists().where(and_(job_tags.c.job_id == jobs.c.id, job_tags.c.tag == tag))
        )
    records = [JobRecord.from_row(row) for row in conn.execute(statement)]
    if len(records) > query.limit:
        return records[: query.limit], encode_cursor(records[query.limit - 1].id)
    return records, None


_ACTIVE = (JobState.QUEUED, JobState.RUNNING, JobState.PAUSED, JobState.CANCELLING)


@dataclass(frozen=True)
class Claim:
    """A job a hub took to run. A `fresh` job never ran anywhere and holds nothing; its
    descriptor comes along so the runner need not read it back."""

    job_id: int
    fresh: bool
    descriptor: dict[str, Any] | None = None
    stop_requested: bool = False


def claim_jobs(
    conn: Connection,
    owner: str,
    now: datetime,
    lease_until: datetime,
    limit: int,
    *,
    orphans: bool = False,
    include_own: bool = False,
) -> list[Claim]:
    """Take up to `limit` jobs to run: queued ones nobody owns; with `orphans`, also
    unfinished ones whose owner's lease ran out (that hub died); with `include_own`, this
    owner's own (after a restart). On PostgreSQL, rows another hub is claiming are skipped.
    """
    if limit <= 0:
        return []
    claimed = _claim_queued(conn, owner, lease_until, limit)
    conditions = []
    if orphans:
        conditions.append(and_(jobs.c.state.in_(_ACTIVE), jobs.c.lease_expires_at < now))
    if include_own:
        conditions.append(and_(jobs.c.state.in_(_ACTIVE), jobs.c.owner == owner))
    for condition in conditions:
        if len(claimed) >= limit:
            break
        candidates = (
            select(jobs.c.id, jobs.c.owner)
            .where(condition)
            .order_by(jobs.c.id)
            .limit(limit - len(claimed))
        )
        if conn.dialect.name == "postgresql":
            # NO KEY UPDATE: events referencing the job (key share) need not wait for it.
            candidates = candidates.with_for_update(skip_locked=True, key_share=True)
        for row in conn.execute(candidates).all():
            same = jobs.c.owner.is_(None) if row.owner is None else jobs.c.owner == row.owner
            result = conn.execute(
                update(jobs)
                .where(jobs.c.id == row.id, same, jobs.c.state.in_(_ACTIVE))
                .values(owner=owner, lease_expires_at=lease_until)
            )
            if result.rowcount:
                claimed.append(Claim(job_id=row.id, fresh=False))
    return claimed


def _claim_queued(conn: Connection, owner: str, lease_until: datetime, limit: int) -> list[Claim]:
    """Queued jobs nobody owns, in order, claimed in one statement."""
    postgres = conn.dialect.name == "postgresql"

    def build() -> Any:
        queued = (
            select(jobs.c.id)
            .where(jobs.c.state == JobState.QUEUED, jobs.c.owner.is_(None))
            .order_by(jobs.c.id)
            .limit(bindparam("b_limit"))
        )
        if postgres:
            queued = queued.with_for_update(skip_locked=True, key_share=True)
        return (
            update(jobs)
            .where(jobs.c.id.in_(queued.scalar_subquery()))
            .values(owner=bindparam("b_owner"), lease_expires_at=bindparam("b_lease"))
            .returning(jobs.c.id, jobs.c.descriptor, jobs.c.stop_requested)
        )

    statement = prepared(("claim_queued", postgres), build)
    rows = conn.execute(statement, {"b_limit": limit, "b_owner": owner, "b_lease": lease_until})
    return sorted(
        (
            Claim(
                job_id=row.id,
                fresh=True,
                descriptor=row.descriptor,
                stop_requested=row.stop_requested,
            )
            for row in rows
        ),
        key=lambda claim: claim.job_id,
    )


def renew_job_leases(
    conn: Connection, owner: str, job_ids: Sequence[int], lease_until: datetime
) -> None:
    """Extend this hub's leases on the jobs it runs.

    A job whose row another transaction holds right now is skipped (SKIP LOCKED): the next
    renewal, a third of the lease later, gets it. Waiting instead made the renewal, which
    touches every running job, the usual party to a deadlock.
    """
    if job_ids:
        mine = (
            select(jobs.c.id)
            .where(jobs.c.id.in_(list(job_ids)), jobs.c.owner == owner)
            .with_for_update(skip_locked=True, key_share=True)
        )
        conn.execute(
            update(jobs)
            .where(jobs.c.id.in_(mine.scalar_subquery()))
            .values(lease_expires_at=lease_until)
        )


def update_job(conn: Connection, job_id: int, **values: Any) -> None:
    """Set columns of one job."""
    update_row(conn, jobs, {"id": job_id}, values)


def taken_over(conn: Connection, owner: str, job_ids: Sequence[int]) -> list[int]:
    """Those of `job_ids` that another hub has taken over (this one's lease ran out)."""
    if not job_ids:
        return []
    statement = select(jobs.c.id).where(jobs.c.id.in_(list(job_ids)), jobs.c.owner != owner)
    return [int(job_id) for job_id in conn.execute(statement).scalars()]


def stopping_jobs(conn: Connection, job_ids: Sequence[int]) -> list[int]:
    """Those of `job_ids` that someone asked to stop (state cancelling)."""
    if not job_ids:
        return []
    statement = select(jobs.c.id).where(
        jobs.c.id.in_(list(job_ids)), jobs.c.state == JobState.CANCELLING
    )
    return [int(job_id) for job_id in conn.execute(statement).scalars()]


def insert_run(conn: Connection, job_id: int, number: int, **values: Any) -> None:
    """Create one run of a job."""
    conn.execute(
        prepared("insert_run", lambda: insert(job_runs)),
        {"job_id": job_id, "number": number, **values},
    )


def update_run(conn: Connection, job_id: int, number: int, **values: Any) -> None:
    """Change one run of a job."""
    update_row(conn, job_runs, {"job_id": job_id, "number": number}, values)


def insert_test(conn: Connection, job_id: int, run: int, test_index: int, **values: Any) -> None:
    """Create one test of one run."""
    conn.execute(
        prepared("insert_test", lambda: insert(job_tests)),
        {"job_id": job_id, "run": run, "test_index": test_index, **values},
    )


def update_test(conn: Connection, job_id: int, run: int, test_index: int, **values: Any) -> None:
    """Change one test of one run."""
    update_row(conn, job_tests, {"job_id": job_id, "run": run, "test_index": test_index}, values)
