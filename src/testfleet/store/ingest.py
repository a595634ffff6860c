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
    StepFinished,
    StepStarted,
    TaskFinished,
    TaskPaused,
    TaskResumed,
    TaskStarted,
)
from testfleet.store import agents as agent_store
from testfleet.store import devices as device_store
from testfleet.store import devmode as devmode_store
from testfleet.store import tasks as task_store
from testfleet.store.events import add_events
from testfleet.store.records import TaskRecord
from testfleet.store.task_ends import end_tasks

_KINDS: dict[str, str] = {
    "TASK_STARTED": "task_started",
    "STEP_STARTED": "step_started",
    "LOG": "log",
    "STEP_FINISHED": "step_finished",
    "TASK_FINISHED": "task_finished",
    "DEVICE_ADDED": "device_added",
    "DEVICE_REMOVED": "device_removed",
    "TASK_PAUSED": "task_paused",
    "TASK_RESUMED": "task_resumed",
    "DEV_LISTING": "dev_listing",
    "DEV_COMMAND_OUTPUT": "dev_command_output",
    "DEV_COMMAND_FINISHED": "dev_command_finished",
    "DEV_SCREENSHOT_TAKEN": "dev_screenshot",
}


@dataclass(frozen=True)
class TaskOwner:
    """Which job a task belongs to and which agent holds it."""

    job_id: int
    agent_id: int


class TaskIndex:
    """Each task's job and agent: a bounded cache in front of the tasks table (a task never
    changes job or agent).

    Used from the event loop and from the store's worker threads, hence the lock.
    """

    def __init__(self, size: int = 100_000) -> None:
        self._owners: OrderedDict[int, TaskOwner] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def remember(self, task_id: int, job_id: int, agent_id: int) -> None:
        """Record a task's job and agent."""
        with self._lock:
            self._owners[task_id] = TaskOwner(job_id, agent_id)
            if len(self._owners) > self._size:
                self._owners.popitem(last=False)

    def owner_of(self, conn: Connection, task_id: int) -> TaskOwner | None:
        """The job and agent of `task_id`, or None for a task the store does not know."""
        with self._lock:
            owner = self._owners.get(task_id)
        if owner is None:
            task = task_store.get_task(conn, task_id)
            if task is None:
                return None
            owner = TaskOwner(task.job_id, task.agent_id)
            self.remember(task_id, owner.job_id, owner.agent_id)
        return owner

    def job_of(self, conn: Connection, task_id: int) -> int | None:
        """The job of `task_id`, or None for a task the store does not know."""
        owner = self.owner_of(conn, task_id)
        return owner.job_id if owner is not None else None

    def cached_job(self, task_id: int) -> int | None:
        """The job of `task_id` if the cache knows it (no store read)."""
        with self._lock:
            owner = self._owners.get(task_id)
        return owner.job_id if owner is not None else None


@dataclass(frozen=True)
class Refused:
    """An event the hub will never store, and why: its seq is used up (acknowledged)."""

    seq: int
    code: str
    message: str
    task_id: int | None = None


@dataclass
class Applied:
    """What a batch of events changed."""

    highest_seq: int = 0
    stored: int = 0
    duplicates: int = 0
    jobs: set[int] = field(default_factory=set)
    tasks_ended: set[int] = field(default_factory=set)
    """The jobs of which a task ended (their runners look again)."""
    devices_changed: bool = False
    refused: list[Refused] = field(default_factory=list)
    gap: int | None = None
    """The seq the hub expected where the batch skipped ahead; nothing from there on was
    taken (the agent sends it again from `gap`)."""


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
    """Store the events that follow the agent's highest stored seq (`last_seq` as this hub
    knows it; None: read it from the store) and move tasks, steps and devices accordingly.

    Sequence numbers must follow each other: a duplicate is skipped, a gap ends the batch
    (nothing past it is taken, so nothing is acknowledged past it). An event about a task the
    store does not know, or one another agent holds, is refused: its seq is used up, nothing
    of it is stored. A task's or step's start and end in one batch make one update.
    """
    if last_seq is None:
        last_seq = agent_store.get_last_seq(conn, agent_id)
    applied = Applied(highest_seq=last_seq)
    rows: list[dict[str, Any]] = []
    task_progress: dict[int, _Progress] = {}
    step_progress: dict[tuple[int, int], _Progress] = {}
    pause_changed: set[int] = set()
    for event in events:
        if event.seq <= applied.highest_seq:
            applied.duplicates += 1
            continue
        if event.seq > applied.highest_seq + 1:
            applied.gap = applied.highest_seq + 1
            break
        applied.highest_seq = event.seq
        task_id = getattr(event, "task_id", None)
        job_id: int | None = None
        if task_id is not None:
            owner = index.owner_of(conn, task_id)
            refusal = _refusal(event.seq, task_id, owner, agent_id)
            if refusal is not None:
                applied.refused.append(refusal)
                continue
            assert owner is not None
            job_id = owner.job_id
            applied.jobs.add(job_id)
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
        match event:
            case TaskStarted():
                task_progress.setdefault(event.task_id, _Progress()).started_at = event.at
            case TaskFinished():
                task_progress.setdefault(event.task_id, _Progress()).ended = event
                if job_id is not None:
                    applied.tasks_ended.add(job_id)
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
            case TaskPaused():
                devmode_store.mark_paused(conn, event.task_id, event.reason, event.step_index)
                if job_id is not None:
                    pause_changed.add(job_id)
            case TaskResumed():
                devmode_store.mark_resumed(conn, event.task_id)
                if job_id is not None:
                    pause_changed.add(job_id)
            case _:
                pass
    # Steps first: a task that ends closes the steps still open, so they must be up to date.
    for (task_id, step), progress in step_progress.items():
        _advance_step(conn, task_id, step, progress)
    for task_id, progress in task_progress.items():
        _advance_task(conn, task_id, progress)
        # A finished task is paused no more (its job may run on, or end).
        if progress.ended is not None and devmode_store.mark_resumed(conn, task_id):
            job_of = index.cached_job(task_id)
            if job_of is not None:
                pause_changed.add(job_of)
    for job_id in pause_changed:
        devmode_store.settle_job_state(conn, job_id)
    add_events(conn, rows)
    applied.stored = len(rows)
    if applied.highest_seq > last_seq:
        agent_store.set_last_seq(conn, agent_id, applied.highest_seq, now)
    return applied


def _refusal(seq: int, task_id: int, owner: TaskOwner | None, agent_id: int) -> Refused | None:
    if owner is None:
        return Refused(seq, "unknown_task", f"task {task_id} is unknown to this hub", task_id)
    if owner.agent_id != agent_id:
        message = f"task {task_id} is held by another agent: only its holder reports on it"
        return Refused(seq, "not_your_task", message, task_id)
    return None


def skip_event(conn: Connection, agent_id: int, seq: int, now: datetime) -> None:
    """Use up an event's seq without storing it (the store refused it for good)."""
    agent_store.set_last_seq(conn, agent_id, seq, now)


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


def refuse_event(
    conn: Connection,
    agent_id: int,
    event: EventMessage,
    reason: str,
    now: datetime,
) -> TaskRecord | None:
    """The store cannot take `event` (it failed alone): use up its seq, and fail the task it
    is about (if the agent holds it) with `reason`, so the task is not left waiting for an
    event that never lands. Returns the failed task."""
    skip_event(conn, agent_id, event.seq, now)
    task_id = getattr(event, "task_id", None)
    if task_id is None:
        return None
    task = task_store.get_task(conn, task_id)
    if task is None or task.agent_id != agent_id:
        return None
    ended = end_tasks(conn, [task], RunState.FAILED, reason, now)
    return task if ended else None
