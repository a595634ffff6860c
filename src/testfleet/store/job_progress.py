"""A job's progress as its runner records it: runs, tests and attempts begin and end.

Each function is one piece of a transaction that adds its own events; the runner commits
several together (see `hub/jobs/pending.py`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from testfleet.protocol.api import ReporterResult
from testfleet.protocol.states import JobState, RunState
from testfleet.store import devices as device_store
from testfleet.store import jobs as job_store
from testfleet.store import tasks as task_store
from testfleet.store.events import add_events, event_row
from testfleet.store.job_tree import JobTree, load_job_tree
from testfleet.store.records import TaskRecord

Announce = Callable[[Connection, Sequence[TaskRecord]], None]
"""Called in the transaction that creates tasks, e.g. to notify another hub of them."""


def _event(conn: Connection, job_id: int, kind: str, at: datetime, **data: Any) -> None:
    add_events(conn, [event_row(kind, at, job_id=job_id, data=data)])


def start_run(
    conn: Connection, job_id: int, number: int, now: datetime, *, first_of: str | None = None
) -> None:
    """Run `number` begins; `first_of` (the hub's server id) when it is the job's first."""
    if first_of is not None:
        job_store.update_job(conn, job_id, state=JobState.RUNNING, started_at=now)
        _event(conn, job_id, "job_started", now, server_id=first_of)
    job_store.insert_run(conn, job_id, number, state=RunState.RUNNING, started_at=now)
    _event(conn, job_id, "run_started", now, run=number)


def end_run(
    conn: Connection,
    job_id: int,
    number: int,
    state: RunState,
    results: Sequence[ReporterResult],
    now: datetime,
) -> None:
    """Run `number` ended in `state`, with its reporters' results."""
    dumped = [result.model_dump(mode="json") for result in results]
    job_store.update_run(conn, job_id, number, state=state, ended_at=now, reporters=dumped)
    for result in dumped:
        _event(conn, job_id, "reporter_result", now, run=number, **result)
    _event(conn, job_id, "run_finished", now, run=number, state=state)


def start_test(
    conn: Connection, job_id: int, run: int, index: int, name: str, now: datetime
) -> None:
    """Test `index` of run `run` begins (no attempt yet)."""
    job_store.insert_test(
        conn, job_id, run, index, name=name, state=RunState.RUNNING, attempts=0, started_at=now
    )
    _event(conn, job_id, "test_started", now, run=run, test=index, name=name)


def end_test(
    conn: Connection,
    job_id: int,
    run: int,
    index: int,
    name: str,
    state: RunState,
    error: str | None,
    now: datetime,
) -> None:
    """Test `index` of run `run` ended in `state`."""
    job_store.update_test(
        conn, job_id, run, index, state=state, ended_at=now, error=error, waiting=None
    )
    _event(
        conn, job_id, "test_finished", now, run=run, test=index, name=name, state=state, error=error
    )


def start_attempt(
    conn: Connection,
    job_id: int,
    run: int,
    index: int,
    attempt: int,
    new: Sequence[task_store.NewTask],
    agent_names: Sequence[str],
    now: datetime,
    announce: Announce | None = None,
) -> list[TaskRecord]:
    """An attempt at a test: a pending task per claimed device (`new`, whose agents are
    named by `agent_names`); returns the tasks."""
    created = task_store.create_tasks(conn, job_id, run, index, attempt, new)
    job_store.update_test(conn, job_id, run, index, attempts=attempt, waiting=None)
    devices = [task.device_id for task in created]
    _event(
        conn, job_id, "devices_acquired", now, run=run, test=index, attempt=attempt, devices=devices
    )
    if announce is not None:
        announce(conn, created)
    add_events(
        conn,
        [
            event_row(
                "task_created",
                now,
                job_id=job_id,
                task_id=task.id,
                data={
                    "run": run,
                    "test": index,
                    "attempt": attempt,
                    "device_id": task.device_id,
                    "agent": agent,
                },
            )
            for task, agent in zip(created, agent_names, strict=True)
        ],
    )
    return created


def set_waiting(
    conn: Connection, job_id: int, run: int, index: int, reason: str, now: datetime
) -> None:
    """Test `index` of run `run` waits for devices, for `reason`."""
    job_store.update_test(conn, job_id, run, index, waiting=reason)
    _event(conn, job_id, "test_waiting", now, run=run, test=index, reason=reason)


def release_devices(conn: Connection, job_id: int, device_ids: Sequence[str]) -> None:
    """The job gives these devices back."""
    device_store.release_devices(conn, device_ids, job_id)


def finish_job(
    conn: Connection,
    job_id: int,
    state: JobState,
    error: str | None,
    final_reporters: Sequence[ReporterResult],
    now: datetime,
    *,
    release_all: bool,
) -> None:
    """The job ended in `state`; with `release_all`, every device it still holds is freed."""
    if release_all:
        device_store.release_job_devices(conn, job_id)
    job_store.update_job(
        conn,
        job_id,
        state=state,
        ended_at=now,
        error=error,
        final_reporters=[r.model_dump(mode="json") for r in final_reporters],
    )
    _event(conn, job_id, "job_finished", now, state=state, error=error)


@dataclass(frozen=True)
class Resumed:
    """A job taken over: its tree (None: unknown), and the devices it held for no task,
    given back."""

    tree: JobTree | None
    released: list[str]


def resume_job(conn: Connection, job_id: int) -> Resumed:
    """Load a job left by another runner, and give back devices it holds for no task."""
    released = device_store.release_idle_job_devices(conn, job_id)
    return Resumed(load_job_tree(conn, job_id), released)
