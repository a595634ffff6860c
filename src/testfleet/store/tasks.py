"""Tasks (one device's pass through a test's steps) and their steps."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Text, bindparam, case, func, insert, select, update

from testfleet.protocol.states import RunState
from testfleet.store.prepared import prepared, update_params
from testfleet.store.records import TaskRecord
from testfleet.store.tables import steps, tasks
from testfleet.store.types import UTCDateTime


@dataclass(frozen=True)
class NewTask:
    """A task to create: one device's pass through a test's steps."""

    device_id: str
    device_name: str
    agent_id: int
    steps: Sequence[tuple[str, str]]  # (name, plugin)


_NEW_TASK_COLUMNS = (
    "job_id",
    "run",
    "test_index",
    "attempt",
    "device_id",
    "device_name",
    "agent_id",
    "state",
)


def create_tasks(
    conn: Connection,
    job_id: int,
    run: int,
    test_index: int,
    attempt: int,
    new: Sequence[NewTask],
) -> list[TaskRecord]:
    """Create pending tasks with pending steps; returns them in order."""
    created: list[TaskRecord] = []
    for task in new:
        pending = TaskRecord(
            id=0,
            job_id=job_id,
            run=run,
            test_index=test_index,
            attempt=attempt,
            device_id=task.device_id,
            device_name=task.device_name,
            agent_id=task.agent_id,
            state=RunState.PENDING,
        )
        values = {column: getattr(pending, column) for column in _NEW_TASK_COLUMNS}
        result = conn.execute(prepared("insert_task", lambda: insert(tasks)), values)
        task_id = int(result.inserted_primary_key[0])  # type: ignore[index]
        created.append(dataclasses.replace(pending, id=task_id))
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
    return created


def get_task(conn: Connection, task_id: int) -> TaskRecord | None:
    """One task."""
    statement = prepared("get_task", lambda: select(tasks).where(tasks.c.id == bindparam("id")))
    row = conn.execute(statement, {"id": task_id}).first()
    return TaskRecord.from_row(row) if row is not None else None


def get_tasks(conn: Connection, ids: Sequence[int]) -> list[TaskRecord]:
    """The tasks with these ids, in the order given (unknown ids left out)."""
    if len(ids) == 1:
        task = get_task(conn, ids[0])
        return [task] if task is not None else []
    statement = prepared(
        "get_tasks", lambda: select(tasks).where(tasks.c.id.in_(bindparam("ids", expanding=True)))
    )
    found = {row.id: row for row in conn.execute(statement, {"ids": list(ids)})}
    return [TaskRecord.from_row(found[task_id]) for task_id in ids if task_id in found]


def tasks_of_test(
    conn: Connection, job_id: int, run: int, test_index: int, attempt: int | None = None
) -> list[TaskRecord]:
    """The tasks of one test (of one attempt, if given), by id."""
    query = (
        select(tasks)
        .where(tasks.c.job_id == job_id, tasks.c.run == run, tasks.c.test_index == test_index)
        .order_by(tasks.c.id)
    )
    if attempt is not None:
        query = query.where(tasks.c.attempt == attempt)
    return [TaskRecord.from_row(row) for row in conn.execute(query)]


def unfinished_tasks_of_agent(conn: Connection, agent_id: int) -> list[TaskRecord]:
    """The agent's tasks that are pending or running."""
    return unfinished_tasks_of_agents(conn, [agent_id]).get(agent_id, [])


def unfinished_tasks_of_agents(
    conn: Connection, agent_ids: Sequence[int]
) -> dict[int, list[TaskRecord]]:
    """The agents' tasks that are pending or running, by agent (a few hundred agents at most)."""
    query = select(tasks).where(
        tasks.c.agent_id.in_(list(agent_ids)),
        tasks.c.state.in_([RunState.PENDING, RunState.RUNNING]),
    )
    found: dict[int, list[TaskRecord]] = {}
    for row in conn.execute(query):
        found.setdefault(row.agent_id, []).append(TaskRecord.from_row(row))
    return found


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
) -> bool:
    """Move a task to `state` (at `at`; a finishing task may also bring its `started_at`);
    a finished task is left alone. True if it changed."""
    values: dict[str, Any] = {"state": state}
    values["started_at" if state == RunState.RUNNING else "ended_at"] = at
    if started_at is not None and state.finished:
        values["started_at"] = started_at
    if error is not None:
        values["error"] = error
    statement = _open_task_update(tuple(sorted(values)))
    changed = conn.execute(statement, update_params({"id": task_id}, values)).rowcount > 0
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
