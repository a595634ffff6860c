"""Store an agent's events: each (agent, seq) once, and the task, step and device rows they
move in the same commit."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from testfleet.protocol.states import RunState
from testfleet.protocol.wire import (
    DeviceAdded,
    DeviceRemoved,
    EventMessage,
    LogChunk,
    StepFinished,
    StepStarted,
    TaskFinished,
    TaskStarted,
)
from testfleet.store import agents as agent_store
from testfleet.store import devices as device_store
from testfleet.store import tasks as task_store
from testfleet.store.events import add_events

_KINDS: dict[str, str] = {
    "TASK_STARTED": "task_started",
    "STEP_STARTED": "step_started",
    "LOG": "log",
    "STEP_FINISHED": "step_finished",
    "TASK_FINISHED": "task_finished",
    "DEVICE_ADDED": "device_added",
    "DEVICE_REMOVED": "device_removed",
}


class TaskIndex:
    """Which job each task belongs to: a bounded cache in front of the tasks table.

    Used from the event loop and from the store's worker threads, hence the lock.
    """

    def __init__(self, size: int = 100_000) -> None:
        self._jobs: OrderedDict[int, int] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def remember(self, task_id: int, job_id: int) -> None:
        """Record a task's job."""
        with self._lock:
            self._jobs[task_id] = job_id
            if len(self._jobs) > self._size:
                self._jobs.popitem(last=False)

    def job_of(self, conn: Connection, task_id: int) -> int | None:
        """The job of `task_id`, or None for a task the store does not know."""
        with self._lock:
            job_id = self._jobs.get(task_id)
        if job_id is None:
            task = task_store.get_task(conn, task_id)
            if task is None:
                return None
            job_id = task.job_id
            self.remember(task_id, job_id)
        return job_id


@dataclass
class Applied:
    """What a batch of events changed."""

    highest_seq: int = 0
    stored: int = 0
    duplicates: int = 0
    jobs: set[int] = field(default_factory=set)
    devices_changed: bool = False
    unknown_tasks: list[int] = field(default_factory=list)


@dataclass
class _Progress:
    """What one batch says about one task or step: when it started, how it ended."""

    started_at: datetime | None = None
    ended: TaskFinished | StepFinished | None = None


def apply_events(
    conn: Connection,
    index: TaskIndex,
    agent_id: int,
    agent_name: str,
    last_seq: int | None,
    events: Sequence[EventMessage],
    now: datetime,
) -> Applied:
    """Store the events above the agent's highest stored seq (`last_seq` as this hub knows
    it; None: read it from the store) and move tasks, steps and devices accordingly.

    A task's or step's start and end in the same batch make one update, not two.
    """
    if last_seq is None:
        last_seq = agent_store.get_last_seq(conn, agent_id)
    applied = Applied(highest_seq=last_seq)
    rows: list[dict[str, Any]] = []
    task_progress: dict[int, _Progress] = {}
    step_progress: dict[tuple[int, int], _Progress] = {}
    for event in events:
        if event.seq <= applied.highest_seq:
            applied.duplicates += 1
            continue
        applied.highest_seq = event.seq
        task_id = getattr(event, "task_id", None)
        job_id = index.job_of(conn, task_id) if task_id is not None else None
        if task_id is not None and job_id is None:
            applied.unknown_tasks.append(task_id)
        data: dict[str, Any] = event.model_dump(
            mode="json", exclude={"type", "seq", "at", "task_id"}
        )
        rows.append(
            {
                "kind": _KINDS[event.type],
                "at": event.at,
                "agent_id": agent_id,
                "agent_seq": event.seq,
                "job_id": job_id,
                "task_id": task_id,
                "data": data,
            }
        )
        if job_id is not None:
            applied.jobs.add(job_id)
        match event:
            case TaskStarted():
                task_progress.setdefault(event.task_id, _Progress()).started_at = event.at
            case TaskFinished():
                task_progress.setdefault(event.task_id, _Progress()).ended = event
            case StepStarted():
                key = (event.task_id, event.step_index)
                step_progress.setdefault(key, _Progress()).started_at = event.at
            case StepFinished():
                step_progress.setdefault(
                    (event.task_id, event.step_index), _Progress()
                ).ended = event
            case DeviceAdded() | DeviceRemoved():
                _apply_device(conn, agent_id, agent_name, event)
                applied.devices_changed = True
            case LogChunk():
                pass
    # Steps first: a task that ends closes the steps still open, so they must be up to date.
    for (task_id, step), progress in step_progress.items():
        _advance_step(conn, task_id, step, progress)
    for task_id, progress in task_progress.items():
        _advance_task(conn, task_id, progress)
    add_events(conn, rows)
    applied.stored = len(rows)
    if rows:
        agent_store.set_last_seq(conn, agent_id, applied.highest_seq, now)
    return applied


def _advance_task(conn: Connection, task_id: int, progress: _Progress) -> None:
    ended = progress.ended
    if isinstance(ended, TaskFinished):
        task_store.set_task_state(
            conn,
            task_id,
            ended.state,
            at=ended.at,
            error=ended.error,
            started_at=progress.started_at,
        )
    elif progress.started_at is not None:
        task_store.set_task_state(conn, task_id, RunState.RUNNING, at=progress.started_at)


def _advance_step(conn: Connection, task_id: int, step: int, progress: _Progress) -> None:
    ended = progress.ended
    if isinstance(ended, StepFinished):
        task_store.set_step_state(
            conn,
            task_id,
            step,
            ended.state,
            at=ended.at,
            exit_code=ended.exit_code,
            error=ended.error,
            started_at=progress.started_at,
        )
    elif progress.started_at is not None:
        task_store.set_step_state(conn, task_id, step, RunState.RUNNING, at=progress.started_at)


def _apply_device(
    conn: Connection, agent_id: int, agent_name: str, event: DeviceAdded | DeviceRemoved
) -> None:
    if isinstance(event, DeviceAdded):
        d = event.device
        offer = device_store.DeviceOffer(
            name=d.name,
            kind=d.kind,
            capabilities=d.capabilities,
            labels=d.labels,
            url=d.url,
            session_capabilities=d.session_capabilities or None,
        )
        device_store.add_devices(conn, agent_id, agent_name, [offer])
    else:
        device_store.remove_device(conn, agent_id, event.name)
