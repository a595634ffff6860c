"""Ending tasks on the hub's own authority: a lost agent, a task nobody runs, a stop."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from testfleet.protocol.states import RunState
from testfleet.store import jobs as job_store
from testfleet.store.events import add_events, event_row


def end_tasks(
    conn: Connection, tasks: Iterable[tuple[int, int]], state: RunState, reason: str, now: datetime
) -> list[int]:
    """End the unfinished ones of `tasks` ((task id, job id) pairs) in `state` with `reason`,
    each with a `task_finished` event; returns the ids that changed."""
    ended: list[int] = []
    events: list[dict[str, Any]] = []
    for task_id, job_id in tasks:
        if job_store.set_task_state(conn, task_id, state, at=now, error=reason):
            ended.append(task_id)
            events.append(
                event_row(
                    "task_finished",
                    now,
                    job_id=job_id,
                    task_id=task_id,
                    data={"state": state, "error": reason, "source": "hub"},
                )
            )
    add_events(conn, events)
    return ended
