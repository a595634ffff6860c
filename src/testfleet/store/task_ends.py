"""Ending tasks on the hub's own authority: a lost agent, a task nobody runs, a stop."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from testfleet.protocol.states import RunState
from testfleet.store.devmode import mark_resumed, settle_job_state
from testfleet.store.events import add_events, event_row
from testfleet.store.records import TaskRecord
from testfleet.store.tasks import set_task_state


def end_tasks(
    conn: Connection, tasks: Iterable[TaskRecord], state: RunState, reason: str, now: datetime
) -> list[int]:
    """End the unfinished ones of `tasks` in `state` with `reason`, each with a
    `task_finished` event; returns the ids that changed."""
    ended: list[int] = []
    events: list[dict[str, Any]] = []
    unpaused: set[int] = set()
    for task in tasks:
        if set_task_state(conn, task.id, state, at=now, error=reason):
            ended.append(task.id)
            if task.paused is not None and mark_resumed(conn, task.id):
                unpaused.add(task.job_id)
            events.append(
                event_row(
                    "task_finished",
                    now,
                    job_id=task.job_id,
                    task_id=task.id,
                    data={"state": state, "error": reason, "source": "hub"},
                )
            )
    for job_id in unpaused:  # the job was paused: it runs (or ends) now
        settle_job_state(conn, job_id)
    add_events(conn, events)
    return ended
