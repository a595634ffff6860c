"""Apply an agent's events to the store: each (agent, seq) once, state rows in the same commit."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from testfleet.protocol.states import RunState
from testfleet.protocol.wire import (
    DeviceAdded,
    DeviceRemoved,
    LogChunk,
    StepFinished,
    StepStarted,
    TaskFinished,
    TaskStarted,
)
from testfleet.store import inventory
from testfleet.store import jobs as job_store
from testfleet.store.events import add_agent_event

AgentEventMessage = (
    TaskStarted | StepStarted | LogChunk | StepFinished | TaskFinished | DeviceAdded | DeviceRemoved
)
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
    """Which job each task belongs to: a bounded cache in front of the tasks table."""

    def __init__(self, size: int = 100_000) -> None:
        self._jobs: OrderedDict[int, int] = OrderedDict()
        self._size = size

    def remember(self, task_id: int, job_id: int) -> None:
        """Record a task's job."""
        self._jobs[task_id] = job_id
        if len(self._jobs) > self._size:
            self._jobs.popitem(last=False)

    async def job_of(self, conn: AsyncConnection, task_id: int) -> int | None:
        """The job of `task_id`, or None for a task the store does not know."""
        job_id = self._jobs.get(task_id)
        if job_id is None:
            row = await job_store.get_task(conn, task_id)
            if row is None:
                return None
            job_id = int(row.job_id)
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


async def apply_events(
    conn: AsyncConnection,
    index: TaskIndex,
    agent_id: int,
    agent_name: str,
    events: Sequence[AgentEventMessage],
) -> Applied:
    """Store the events (skipping ones already stored) and move tasks, steps and devices."""
    applied = Applied()
    for event in events:
        applied.highest_seq = max(applied.highest_seq, event.seq)
        task_id = getattr(event, "task_id", None)
        job_id = await index.job_of(conn, task_id) if task_id is not None else None
        if task_id is not None and job_id is None:
            applied.unknown_tasks.append(task_id)
        data: dict[str, Any] = event.model_dump(
            mode="json", exclude={"type", "seq", "at", "task_id"}
        )
        is_new = await add_agent_event(
            conn,
            _KINDS[event.type],
            event.at,
            agent_id=agent_id,
            seq=event.seq,
            job_id=job_id,
            task_id=task_id,
            data=data,
        )
        if not is_new:
            applied.duplicates += 1
            continue
        applied.stored += 1
        if job_id is not None:
            applied.jobs.add(job_id)
        await _apply_one(conn, agent_id, agent_name, event, applied)
    if applied.highest_seq:
        await inventory.set_last_seq(conn, agent_id, applied.highest_seq)
    return applied


async def _apply_one(
    conn: AsyncConnection,
    agent_id: int,
    agent_name: str,
    event: AgentEventMessage,
    applied: Applied,
) -> None:
    match event:
        case TaskStarted():
            await job_store.set_task_state(conn, event.task_id, RunState.RUNNING, at=event.at)
        case StepStarted():
            await job_store.set_step_state(
                conn, event.task_id, event.step_index, RunState.RUNNING, at=event.at
            )
        case StepFinished():
            await job_store.set_step_state(
                conn,
                event.task_id,
                event.step_index,
                event.state,
                at=event.at,
                exit_code=event.exit_code,
                error=event.error,
            )
        case TaskFinished():
            await job_store.set_task_state(
                conn, event.task_id, event.state, at=event.at, error=event.error
            )
        case DeviceAdded():
            d = event.device
            await inventory.add_device(
                conn,
                agent_id,
                agent_name,
                inventory.DeviceRow(
                    id=inventory.device_id(agent_name, d.name),
                    agent_id=agent_id,
                    name=d.name,
                    kind=d.kind,
                    capabilities=d.capabilities,
                    labels=d.labels,
                ),
            )
            applied.devices_changed = True
        case DeviceRemoved():
            await inventory.remove_device(conn, agent_id, event.name)
            applied.devices_changed = True
        case LogChunk():
            pass
