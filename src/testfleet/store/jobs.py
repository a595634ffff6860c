"""Jobs and what they are made of: runs, tests, tasks (a device's pass) and steps."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Row, and_, delete, exists, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from testfleet.protocol.states import FINISHED_JOB_STATES, JobState, RunState
from testfleet.store.tables import agents, job_runs, job_tags, job_tests, jobs, steps, tasks


class CursorError(ValueError):
    """A `cursor` that no page of ours handed out."""


@dataclass
class JobQuery:
    """Filters for listing jobs; every given filter must match (tags: all of them)."""

    states: Sequence[str] = ()
    tags: Sequence[str] = ()
    requestor: str | None = None
    name: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    limit: int = 50
    cursor: str | None = None
    ids: Sequence[int] = field(default_factory=tuple)


def encode_cursor(job_id: int) -> str:
    """An opaque cursor for the page after `job_id`."""
    return base64.urlsafe_b64encode(f"j{job_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The job id behind a cursor, or CursorError."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if not text.startswith("j"):
            raise ValueError
        return int(text[1:])
    except (ValueError, UnicodeDecodeError):
        raise CursorError(f"cursor {cursor!r} was not handed out by this API") from None


async def insert_job(
    conn: AsyncConnection,
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
    result = await conn.execute(
        insert(jobs).values(
            name=name,
            state=JobState.QUEUED,
            requestor=requestor,
            descriptor=descriptor,
            tags=list(tags),
            runs_requested=runs,
            created_at=now,
            retried_from=retried_from,
            stop_requested=False,
        )
    )
    job_id = int(result.inserted_primary_key[0])  # type: ignore[index]
    if tags:
        await conn.execute(insert(job_tags), [{"job_id": job_id, "tag": t} for t in tags])
    return job_id


async def get_job(conn: AsyncConnection, job_id: int) -> Row[Any] | None:
    """One job row."""
    return (await conn.execute(select(jobs).where(jobs.c.id == job_id))).first()


async def list_jobs(
    conn: AsyncConnection, query: JobQuery
) -> tuple[Sequence[Row[Any]], str | None]:
    """A page of jobs, newest first, and the cursor of the next page (None on the last)."""
    statement = select(jobs).order_by(jobs.c.id.desc()).limit(query.limit + 1)
    if query.cursor:
        statement = statement.where(jobs.c.id < decode_cursor(query.cursor))
    if query.states:
        statement = statement.where(jobs.c.state.in_(list(query.states)))
    if query.requestor:
        statement = statement.where(jobs.c.requestor == query.requestor)
    if query.name:
        statement = statement.where(jobs.c.name == query.name)
    if query.created_after:
        statement = statement.where(jobs.c.created_at >= query.created_after)
    if query.created_before:
        statement = statement.where(jobs.c.created_at < query.created_before)
    if query.ids:
        statement = statement.where(jobs.c.id.in_(list(query.ids)))
    for tag in query.tags:
        statement = statement.where(
            exists().where(and_(job_tags.c.job_id == jobs.c.id, job_tags.c.tag == tag))
        )
    rows = (await conn.execute(statement)).all()
    if len(rows) > query.limit:
        return rows[: query.limit], encode_cursor(rows[query.limit - 1].id)
    return rows, None


async def claim_jobs(
    conn: AsyncConnection,
    owner: str,
    now: datetime,
    lease_until: datetime,
    limit: int,
) -> list[int]:
    """Take up to `limit` jobs to run: queued ones, and running ones whose owner's lease ran out.

    On PostgreSQL rows another hub is claiming are skipped (SKIP LOCKED).
    """
    if limit <= 0:
        return []
    runnable = or_(
        jobs.c.state == JobState.QUEUED,
        and_(
            jobs.c.state.in_([JobState.RUNNING, JobState.CANCELLING, JobState.PAUSED]),
            or_(
                jobs.c.owner == owner,
                jobs.c.lease_expires_at < now,
                jobs.c.lease_expires_at.is_(None),
            ),
        ),
    )
    candidates = (
        select(jobs.c.id, jobs.c.state, jobs.c.owner)
        .where(runnable)
        .order_by(jobs.c.id)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        candidates = candidates.with_for_update(skip_locked=True)
    rows = (await conn.execute(candidates)).all()
    claimed: list[int] = []
    for row in rows:
        same_owner = jobs.c.owner.is_(None) if row.owner is None else jobs.c.owner == row.owner
        result = await conn.execute(
            update(jobs)
            .where(jobs.c.id == row.id, jobs.c.state == row.state, same_owner)
            .values(owner=owner, lease_expires_at=lease_until)
        )
        if result.rowcount:
            claimed.append(row.id)
    return claimed


async def renew_job_leases(
    conn: AsyncConnection, owner: str, job_ids: Sequence[int], lease_until: datetime
) -> None:
    """Extend this hub's leases on the jobs it runs."""
    if job_ids:
        await conn.execute(
            update(jobs)
            .where(jobs.c.id.in_(list(job_ids)), jobs.c.owner == owner)
            .values(lease_expires_at=lease_until)
        )


async def update_job(conn: AsyncConnection, job_id: int, **values: Any) -> None:
    """Set columns of one job."""
    await conn.execute(update(jobs).where(jobs.c.id == job_id).values(**values))


async def request_stop(conn: AsyncConnection, job_id: int) -> JobState | None:
    """Mark a job to be stopped; returns its state before, None if it had finished already.

    A queued job that no hub runs yet is cancelled on the spot.
    """
    row = (await conn.execute(select(jobs.c.state).where(jobs.c.id == job_id))).first()
    if row is None:
        raise LookupError(job_id)
    state = JobState(row.state)
    if state in FINISHED_JOB_STATES:
        return None
    await conn.execute(update(jobs).where(jobs.c.id == job_id).values(stop_requested=True))
    return state


async def upsert_run(conn: AsyncConnection, job_id: int, number: int, **values: Any) -> None:
    """Create or update one run of a job."""
    found = await conn.execute(
        select(job_runs.c.number).where(job_runs.c.job_id == job_id, job_runs.c.number == number)
    )
    if found.first() is None:
        await conn.execute(insert(job_runs).values(job_id=job_id, number=number, **values))
    else:
        await conn.execute(
            update(job_runs)
            .where(job_runs.c.job_id == job_id, job_runs.c.number == number)
            .values(**values)
        )


async def upsert_test(
    conn: AsyncConnection, job_id: int, run: int, test_index: int, **values: Any
) -> None:
    """Create or update one test of one run."""
    key = and_(
        job_tests.c.job_id == job_id, job_tests.c.run == run, job_tests.c.test_index == test_index
    )
    if (await conn.execute(select(job_tests.c.state).where(key))).first() is None:
        await conn.execute(
            insert(job_tests).values(job_id=job_id, run=run, test_index=test_index, **values)
        )
    else:
        await conn.execute(update(job_tests).where(key).values(**values))


@dataclass(frozen=True)
class NewTask:
    """A task to create: one device's pass through a test's steps."""

    device_id: str
    device_name: str
    agent_id: int
    steps: Sequence[tuple[str, str]]  # (name, plugin)


async def create_tasks(
    conn: AsyncConnection,
    job_id: int,
    run: int,
    test_index: int,
    attempt: int,
    new: Sequence[NewTask],
) -> list[int]:
    """Create pending tasks with pending steps; returns their ids in order."""
    ids: list[int] = []
    for task in new:
        result = await conn.execute(
            insert(tasks).values(
                job_id=job_id,
                run=run,
                test_index=test_index,
                attempt=attempt,
                device_id=task.device_id,
                device_name=task.device_name,
                agent_id=task.agent_id,
                state=RunState.PENDING,
            )
        )
        task_id = int(result.inserted_primary_key[0])  # type: ignore[index]
        ids.append(task_id)
        await conn.execute(
            insert(steps),
            [
                {
                    "task_id": task_id,
                    "idx": i,
                    "name": name,
                    "plugin": plugin,
                    "state": RunState.PENDING,
                }
                for i, (name, plugin) in enumerate(task.steps)
            ],
        )
    return ids


async def get_task(conn: AsyncConnection, task_id: int) -> Row[Any] | None:
    """One task row."""
    return (await conn.execute(select(tasks).where(tasks.c.id == task_id))).first()


async def tasks_of_test(
    conn: AsyncConnection, job_id: int, run: int, test_index: int, attempt: int | None = None
) -> Sequence[Row[Any]]:
    """The tasks of one test (of one attempt, if given), by id."""
    query = (
        select(tasks)
        .where(tasks.c.job_id == job_id, tasks.c.run == run, tasks.c.test_index == test_index)
        .order_by(tasks.c.id)
    )
    if attempt is not None:
        query = query.where(tasks.c.attempt == attempt)
    return (await conn.execute(query)).all()


async def unfinished_tasks_of_agent(conn: AsyncConnection, agent_id: int) -> Sequence[Row[Any]]:
    """The agent's tasks that are pending or running."""
    query = select(tasks).where(
        tasks.c.agent_id == agent_id, tasks.c.state.in_([RunState.PENDING, RunState.RUNNING])
    )
    return (await conn.execute(query)).all()


async def set_task_state(
    conn: AsyncConnection,
    task_id: int,
    state: RunState,
    *,
    at: datetime,
    error: str | None = None,
    only_if_unfinished: bool = True,
) -> bool:
    """Move a task to `state`; a finished task is left alone. True if it changed."""
    values: dict[str, Any] = {"state": state}
    if state == RunState.RUNNING:
        values["started_at"] = at
    else:
        values["ended_at"] = at
    if error is not None:
        values["error"] = error
    statement = update(tasks).where(tasks.c.id == task_id)
    if only_if_unfinished:
        statement = statement.where(tasks.c.state.in_([RunState.PENDING, RunState.RUNNING]))
    result = await conn.execute(statement.values(**values))
    changed = result.rowcount > 0
    if changed and state.finished:
        await _end_open_steps(conn, task_id, state, at, error)
    return changed


async def _end_open_steps(
    conn: AsyncConnection, task_id: int, task_state: RunState, at: datetime, error: str | None
) -> None:
    """Steps a finished task never finished: the unstarted are skipped, a running one ends."""
    cancelled = task_state == RunState.CANCELLED
    await conn.execute(
        update(steps)
        .where(steps.c.task_id == task_id, steps.c.state == RunState.PENDING)
        .values(state=RunState.CANCELLED if cancelled else RunState.SKIPPED)
    )
    interrupted = task_state if task_state != RunState.PASSED else RunState.FAILED
    await conn.execute(
        update(steps)
        .where(steps.c.task_id == task_id, steps.c.state == RunState.RUNNING)
        .values(state=interrupted, ended_at=at, error=error)
    )


async def set_step_state(
    conn: AsyncConnection,
    task_id: int,
    index: int,
    state: RunState,
    *,
    at: datetime,
    exit_code: int | None = None,
    error: str | None = None,
) -> None:
    """Move one step to `state` (a finished step is left alone)."""
    values: dict[str, Any] = {"state": state}
    if state == RunState.RUNNING:
        values["started_at"] = at
    else:
        values.update(ended_at=at, exit_code=exit_code, error=error)
    await conn.execute(
        update(steps)
        .where(
            steps.c.task_id == task_id,
            steps.c.idx == index,
            steps.c.state.in_([RunState.PENDING, RunState.RUNNING]),
        )
        .values(**values)
    )


@dataclass
class JobTree:
    """Everything the status of one job is made of."""

    job: Row[Any]
    runs: Sequence[Row[Any]]
    tests: Sequence[Row[Any]]
    tasks: Sequence[Row[Any]]
    steps: Sequence[Row[Any]]


async def load_job_tree(conn: AsyncConnection, job_id: int) -> JobTree | None:
    """The job with its runs, tests, tasks (with agent names) and steps."""
    job = await get_job(conn, job_id)
    if job is None:
        return None
    runs = (
        await conn.execute(
            select(job_runs).where(job_runs.c.job_id == job_id).order_by(job_runs.c.number)
        )
    ).all()
    tests = (
        await conn.execute(
            select(job_tests)
            .where(job_tests.c.job_id == job_id)
            .order_by(job_tests.c.run, job_tests.c.test_index)
        )
    ).all()
    task_rows = (
        await conn.execute(
            select(tasks, agents.c.name.label("agent_name"))
            .join(agents, agents.c.id == tasks.c.agent_id)
            .where(tasks.c.job_id == job_id)
            .order_by(tasks.c.id)
        )
    ).all()
    step_rows = (
        await conn.execute(
            select(steps)
            .join(tasks, tasks.c.id == steps.c.task_id)
            .where(tasks.c.job_id == job_id)
            .order_by(steps.c.task_id, steps.c.idx)
        )
    ).all()
    return JobTree(job=job, runs=runs, tests=tests, tasks=task_rows, steps=step_rows)


async def delete_job(conn: AsyncConnection, job_id: int) -> None:
    """Remove a job and everything under it (tests use this; the API keeps history)."""
    await conn.execute(delete(jobs).where(jobs.c.id == job_id))
