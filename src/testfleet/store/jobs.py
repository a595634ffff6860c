"""Jobs and what they are made of: runs, tests, tasks (a device's pass) and steps."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Row,
    Text,
    and_,
    bindparam,
    case,
    exists,
    func,
    insert,
    select,
    update,
)

from testfleet.protocol.states import JobState, RunState
from testfleet.store.prepared import prepared, update_params, update_row
from testfleet.store.tables import agents, job_runs, job_tags, job_tests, jobs, steps, tasks
from testfleet.store.types import UTCDateTime


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


def get_job(conn: Connection, job_id: int) -> Row[Any] | None:
    """One job row."""
    statement = prepared("get_job", lambda: select(jobs).where(jobs.c.id == bindparam("id")))
    return conn.execute(statement, {"id": job_id}).first()


def task_with_job(conn: Connection, task_id: int) -> tuple[Row[Any] | None, Row[Any] | None]:
    """A task row and its job's row (None, None for an unknown task)."""
    task = get_task(conn, task_id)
    return task, get_job(conn, task.job_id) if task is not None else None


def lock_job(conn: Connection, job_id: int) -> Row[Any] | None:
    """One job row, locked until the transaction ends (PostgreSQL; SQLite has one writer), so
    a decision taken on it cannot race another writer's change."""
    statement = prepared(
        "lock_job",
        lambda: select(jobs).where(jobs.c.id == bindparam("id")).with_for_update(key_share=True),
    )
    return conn.execute(statement, {"id": job_id}).first()


def list_jobs(conn: Connection, query: JobQuery) -> tuple[Sequence[Row[Any]], str | None]:
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
    rows = (conn.execute(statement)).all()
    if len(rows) > query.limit:
        return rows[: query.limit], encode_cursor(rows[query.limit - 1].id)
    return rows, None


_ACTIVE = (JobState.QUEUED, JobState.RUNNING, JobState.CANCELLING, JobState.PAUSED)


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


@dataclass(frozen=True)
class NewTask:
    """A task to create: one device's pass through a test's steps."""

    device_id: str
    device_name: str
    agent_id: int
    steps: Sequence[tuple[str, str]]  # (name, plugin)


def create_tasks(
    conn: Connection,
    job_id: int,
    run: int,
    test_index: int,
    attempt: int,
    new: Sequence[NewTask],
) -> list[int]:
    """Create pending tasks with pending steps; returns their ids in order."""
    ids: list[int] = []
    for task in new:
        result = conn.execute(
            prepared("insert_task", lambda: insert(tasks)),
            {
                "job_id": job_id,
                "run": run,
                "test_index": test_index,
                "attempt": attempt,
                "device_id": task.device_id,
                "device_name": task.device_name,
                "agent_id": task.agent_id,
                "state": RunState.PENDING,
            },
        )
        task_id = int(result.inserted_primary_key[0])  # type: ignore[index]
        ids.append(task_id)
        conn.execute(
            prepared("insert_steps", lambda: insert(steps)),
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


def get_task(conn: Connection, task_id: int) -> Row[Any] | None:
    """One task row."""
    statement = prepared("get_task", lambda: select(tasks).where(tasks.c.id == bindparam("id")))
    return conn.execute(statement, {"id": task_id}).first()


def tasks_of_test(
    conn: Connection, job_id: int, run: int, test_index: int, attempt: int | None = None
) -> Sequence[Row[Any]]:
    """The tasks of one test (of one attempt, if given), by id."""
    query = (
        select(tasks)
        .where(tasks.c.job_id == job_id, tasks.c.run == run, tasks.c.test_index == test_index)
        .order_by(tasks.c.id)
    )
    if attempt is not None:
        query = query.where(tasks.c.attempt == attempt)
    return (conn.execute(query)).all()


def unfinished_tasks_of_agent(conn: Connection, agent_id: int) -> Sequence[Row[Any]]:
    """The agent's tasks that are pending or running."""
    query = select(tasks).where(
        tasks.c.agent_id == agent_id, tasks.c.state.in_([RunState.PENDING, RunState.RUNNING])
    )
    return (conn.execute(query)).all()


_OPEN = (RunState.PENDING, RunState.RUNNING)


def _open_task_update(values: tuple[str, ...]) -> Any:
    return prepared(
        ("open_task", values),
        lambda: (
            update(tasks)
            .where(tasks.c.id == bindparam("k_id"), tasks.c.state.in_(_OPEN))
            .values({v: bindparam(f"v_{v}") for v in values})
        ),
    )


def set_task_state(
    conn: Connection,
    task_id: int,
    state: RunState,
    *,
    at: datetime,
    error: str | None = None,
    started_at: datetime | None = None,
    only_if_unfinished: bool = True,
) -> bool:
    """Move a task to `state` (at `at`; a finishing task may also bring its `started_at`);
    a finished task is left alone. True if it changed."""
    values: dict[str, Any] = {"state": state}
    values["started_at" if state == RunState.RUNNING else "ended_at"] = at
    if started_at is not None and state.finished:
        values["started_at"] = started_at
    if error is not None:
        values["error"] = error
    if only_if_unfinished:
        statement = _open_task_update(tuple(sorted(values)))
        changed = conn.execute(statement, update_params({"id": task_id}, values)).rowcount > 0
    else:
        changed = update_row(conn, tasks, {"id": task_id}, values) > 0
    if changed and state.finished and state != RunState.PASSED:
        # A passed task reported every step; other ends may leave steps open.
        _end_open_steps(conn, task_id, state, at, error)
    return changed


def _end_open_steps(
    conn: Connection, task_id: int, task_state: RunState, at: datetime, error: str | None
) -> None:
    """Steps a finished task never finished: the unstarted are skipped (cancelled, with a
    cancelled task), a running one ends as the task did (failed, if the task passed)."""
    statement = prepared(
        "end_open_steps",
        lambda: (
            update(steps)
            .where(steps.c.task_id == bindparam("b_task_id"), steps.c.state.in_(_OPEN))
            .values(
                state=case(
                    (steps.c.state == RunState.PENDING, bindparam("b_unstarted")),
                    else_=bindparam("b_interrupted"),
                ),
                ended_at=case(
                    (steps.c.state == RunState.RUNNING, bindparam("b_at", type_=UTCDateTime())),
                    else_=steps.c.ended_at,
                ),
                error=case(
                    (steps.c.state == RunState.RUNNING, bindparam("b_error", type_=Text())),
                    else_=steps.c.error,
                ),
            )
        ),
    )
    cancelled = task_state == RunState.CANCELLED
    conn.execute(
        statement,
        {
            "b_task_id": task_id,
            "b_unstarted": RunState.CANCELLED if cancelled else RunState.SKIPPED,
            "b_interrupted": task_state if task_state != RunState.PASSED else RunState.FAILED,
            "b_at": at,
            "b_error": error,
        },
    )


def set_step_state(
    conn: Connection,
    task_id: int,
    index: int,
    state: RunState,
    *,
    at: datetime,
    exit_code: int | None = None,
    error: str | None = None,
    started_at: datetime | None = None,
) -> None:
    """Move one step to `state` at `at` (a finished step is left alone); a finishing step may
    also bring its `started_at`."""
    if state == RunState.RUNNING:
        statement = prepared(
            "step_running",
            lambda: (
                update(steps)
                .where(
                    steps.c.task_id == bindparam("b_task_id"),
                    steps.c.idx == bindparam("b_idx"),
                    steps.c.state == RunState.PENDING,
                )
                .values(state=RunState.RUNNING, started_at=bindparam("b_at"))
            ),
        )
        conn.execute(statement, {"b_task_id": task_id, "b_idx": index, "b_at": at})
        return
    statement = prepared(
        "step_ended",
        lambda: (
            update(steps)
            .where(
                steps.c.task_id == bindparam("b_task_id"),
                steps.c.idx == bindparam("b_idx"),
                steps.c.state.in_(_OPEN),
            )
            .values(
                state=bindparam("b_state"),
                started_at=func.coalesce(
                    bindparam("b_started", type_=UTCDateTime()), steps.c.started_at
                ),
                ended_at=bindparam("b_at"),
                exit_code=bindparam("b_exit_code"),
                error=bindparam("b_error"),
            )
        ),
    )
    conn.execute(
        statement,
        {
            "b_task_id": task_id,
            "b_idx": index,
            "b_state": state,
            "b_started": started_at,
            "b_at": at,
            "b_exit_code": exit_code,
            "b_error": error,
        },
    )


@dataclass
class JobTree:
    """Everything the status of one job is made of."""

    job: Row[Any]
    runs: Sequence[Row[Any]]
    tests: Sequence[Row[Any]]
    tasks: Sequence[Row[Any]]
    steps: Sequence[Row[Any]]


def load_job_tree(conn: Connection, job_id: int) -> JobTree | None:
    """The job with its runs, tests, tasks (with agent names) and steps."""
    job = get_job(conn, job_id)
    if job is None:
        return None
    runs = (
        conn.execute(
            select(job_runs).where(job_runs.c.job_id == job_id).order_by(job_runs.c.number)
        )
    ).all()
    tests = (
        conn.execute(
            select(job_tests)
            .where(job_tests.c.job_id == job_id)
            .order_by(job_tests.c.run, job_tests.c.test_index)
        )
    ).all()
    task_rows = (
        conn.execute(
            select(tasks, agents.c.name.label("agent_name"))
            .join(agents, agents.c.id == tasks.c.agent_id)
            .where(tasks.c.job_id == job_id)
            .order_by(tasks.c.id)
        )
    ).all()
    step_rows = (
        conn.execute(
            select(steps)
            .join(tasks, tasks.c.id == steps.c.task_id)
            .where(tasks.c.job_id == job_id)
            .order_by(steps.c.task_id, steps.c.idx)
        )
    ).all()
    return JobTree(job=job, runs=runs, tests=tests, tasks=task_rows, steps=step_rows)


def get_tasks(conn: Connection, ids: Sequence[int]) -> Sequence[Any]:
    """The tasks with these ids, in the order given."""
    if len(ids) == 1:
        row = get_task(conn, ids[0])
        return [row] if row is not None else []
    statement = prepared(
        "get_tasks", lambda: select(tasks).where(tasks.c.id.in_(bindparam("ids", expanding=True)))
    )
    rows = {row.id: row for row in conn.execute(statement, {"ids": list(ids)})}
    return [rows[task_id] for task_id in ids if task_id in rows]
