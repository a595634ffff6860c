"""Build and run tasks: their states (scheduled -> processing -> complete | canceled) and logs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, select, update

from testfleet.protocol.plan_api import TaskState
from testfleet.store.plan_records import PlanTaskRecord
from testfleet.store.tables import jobs, plan_tasks

MAX_LOG_CHARS = 1_000_000


def _columns() -> Any:
    return select(
        *(c for c in plan_tasks.c if c.name not in ("states", "log")),
        plan_tasks.c.states.label("history"),
    )


def _entry(state: TaskState, now: datetime) -> dict[str, str]:
    return {"state": str(state), "created": now.isoformat()}


def create_task(
    conn: Connection,
    *,
    task_id: str,
    type: str,
    plan: str,
    case: str,
    runner: str,
    builder: str,
    composition: dict[str, Any],
    requestor: str,
    server_id: str,
    now: datetime,
) -> None:
    """A new task, scheduled."""
    conn.execute(
        plan_tasks.insert().values(
            id=task_id,
            type=type,
            plan=plan,
            case=case,
            runner=runner,
            builder=builder,
            state=TaskState.SCHEDULED,
            states=[_entry(TaskState.SCHEDULED, now)],
            composition=composition,
            log="",
            requestor=requestor,
            server_id=server_id,
            created_at=now,
        )
    )


def get_task(conn: Connection, task_id: str) -> PlanTaskRecord | None:
    """One task."""
    row = conn.execute(_columns().where(plan_tasks.c.id == task_id)).first()
    return PlanTaskRecord.from_row(row) if row is not None else None


def move_task(
    conn: Connection,
    task_id: str,
    state: TaskState,
    now: datetime,
    *,
    result: dict[str, Any] | None = None,
    error: str | None = None,
    artifact: str | None = None,
    job_id: int | None = None,
) -> bool:
    """Move an unfinished task to `state` (with what it produced); False if it had finished."""
    current = conn.execute(
        select(plan_tasks.c.state, plan_tasks.c.states)
        .where(plan_tasks.c.id == task_id)
        .with_for_update()
    ).first()
    if current is None or TaskState(current.state).finished:
        return False
    values: dict[str, Any] = {"state": state}
    if current.state != state:
        values["states"] = [*current.states, _entry(state, now)]
    if state.finished:
        values["ended_at"] = now
    if result is not None:
        values["result"] = result
    if error is not None:
        values["error"] = error
    if artifact is not None:
        values["artifact"] = artifact
    if job_id is not None:
        values["job_id"] = job_id
    conn.execute(update(plan_tasks).where(plan_tasks.c.id == task_id).values(**values))
    return True


def append_log(conn: Connection, task_id: str, text: str) -> None:
    """Add to a task's own log (a build's output); the log keeps its last MAX_LOG_CHARS."""
    current = conn.execute(select(plan_tasks.c.log).where(plan_tasks.c.id == task_id)).first()
    if current is None:
        return
    log = (current.log + text)[-MAX_LOG_CHARS:]
    conn.execute(update(plan_tasks).where(plan_tasks.c.id == task_id).values(log=log))


def get_log(conn: Connection, task_id: str) -> str | None:
    """A task's own log."""
    return conn.execute(
        select(plan_tasks.c.log).where(plan_tasks.c.id == task_id)
    ).scalar_one_or_none()


@dataclass(frozen=True)
class TaskQuery:
    """Filters of `list_tasks`; empty ones match everything."""

    types: Sequence[str] = ()
    states: Sequence[str] = ()
    plan: str | None = None
    case: str | None = None
    runner: str | None = None
    before: datetime | None = None
    after: datetime | None = None
    ids: Sequence[str] = field(default_factory=tuple)
    limit: int = 100


def list_tasks(conn: Connection, query: TaskQuery) -> list[PlanTaskRecord]:
    """Tasks matching `query`, newest first."""
    statement = _columns()
    conditions: list[Any] = []
    if query.types:
        conditions.append(plan_tasks.c.type.in_(list(query.types)))
    if query.states:
        conditions.append(plan_tasks.c.state.in_(list(query.states)))
    if query.plan:
        conditions.append(plan_tasks.c.plan == query.plan)
    if query.case:
        conditions.append(plan_tasks.c.case == query.case)
    if query.runner:
        conditions.append(plan_tasks.c.runner == query.runner)
    if query.before:
        conditions.append(plan_tasks.c.created_at < query.before)
    if query.after:
        conditions.append(plan_tasks.c.created_at > query.after)
    if query.ids:
        conditions.append(plan_tasks.c.id.in_(list(query.ids)))
    if conditions:
        statement = statement.where(and_(*conditions))
    rows = conn.execute(
        statement.order_by(plan_tasks.c.created_at.desc(), plan_tasks.c.id.desc()).limit(
            query.limit
        )
    )
    return [PlanTaskRecord.from_row(row) for row in rows]


def runs_to_finalize(conn: Connection, limit: int = 100) -> list[PlanTaskRecord]:
    """Run tasks still processing whose job has finished (a hub died before finishing them)."""
    finished = ("completed", "failed", "cancelled")
    rows = conn.execute(
        _columns()
        .join(jobs, jobs.c.id == plan_tasks.c.job_id)
        .where(plan_tasks.c.state == TaskState.PROCESSING, jobs.c.state.in_(finished))
        .limit(limit)
    )
    return [PlanTaskRecord.from_row(row) for row in rows]


def orphaned_tasks(conn: Connection, server_id: str) -> list[PlanTaskRecord]:
    """This hub's unfinished tasks that never got a job: an earlier life of the hub left them."""
    rows = conn.execute(
        _columns().where(
            plan_tasks.c.server_id == server_id,
            plan_tasks.c.state.in_([TaskState.SCHEDULED, TaskState.PROCESSING]),
            plan_tasks.c.job_id.is_(None),
        )
    )
    return [PlanTaskRecord.from_row(row) for row in rows]
