"""Developer mode on the agent: each job's pause flags, and the tasks paused at a step boundary.

A task pauses only between steps: before a step whose name is `pause_at`, before every step
while `pause_on_next` is set, or after a failed step when `pause_on_failure` is. While paused
it keeps its device (the task is still running, so the agent's heartbeats keep the lease) and
waits for DEV_RESUME; a stopped task stops waiting at once. Pausing and resuming are numbered
events (TASK_PAUSED, TASK_RESUMED), so the hub learns of them even across a reconnect.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass, field

from testfleet.agent.outbox import Outbox
from testfleet.protocol.wire import TaskPaused, TaskResumed
from testfleet.protocol.wire_dev import PauseFlags

_REMEMBERED_JOBS = 1000


@dataclass
class Paused:
    """A task waiting at a step boundary."""

    job_id: int
    task_id: int
    step_index: int
    step_name: str
    reason: str
    resumed: asyncio.Event = field(default_factory=asyncio.Event)
    ignore_failure: bool = False


class PauseControl:
    """The pause flags of the jobs whose tasks run here, and the tasks paused now."""

    def __init__(self, outbox: Outbox) -> None:
        self._outbox = outbox
        self._flags: OrderedDict[int, PauseFlags] = OrderedDict()
        self.paused: dict[int, Paused] = {}
        """Paused tasks by task id."""

    def flags(self, job_id: int) -> PauseFlags | None:
        """The job's flags (None: developer mode never touched it here)."""
        return self._flags.get(job_id)

    def set_flags(self, job_id: int, flags: PauseFlags) -> None:
        """Replace the job's flags (for its running tasks and those to come)."""
        self._flags[job_id] = flags
        self._flags.move_to_end(job_id)
        while len(self._flags) > _REMEMBERED_JOBS:
            self._flags.popitem(last=False)

    def resume(self, job_id: int, by: str | None = None, *, ignore_failure: bool = False) -> int:
        """Resume the job's paused tasks; returns how many were paused."""
        count = 0
        for pause in list(self.paused.values()):
            if pause.job_id == job_id and not pause.resumed.is_set():
                pause.ignore_failure = ignore_failure
                pause.resumed.set()
                self._outbox.add(
                    TaskResumed(
                        seq=1,
                        task_id=pause.task_id,
                        step_index=pause.step_index,
                        by=by,
                        ignore_failure=ignore_failure,
                    )
                )
                count += 1
        return count

    def reason_before(self, job_id: int, step_name: str) -> str | None:
        """Why a task of the job should pause before the step `step_name` (None: it should not)."""
        flags = self._flags.get(job_id)
        if flags is None:
            return None
        if flags.pause_at is not None and flags.pause_at == step_name:
            return f"reached step {step_name!r}"
        if flags.pause_on_next:
            return f"pause on next step: before {step_name!r}"
        return None

    def reason_after_failure(self, job_id: int, step_name: str) -> str | None:
        """Why a task should pause after the step `step_name` failed (None: it should not)."""
        flags = self._flags.get(job_id)
        if flags is not None and flags.pause_on_failure:
            return f"step {step_name!r} failed"
        return None

    async def pause(
        self, job_id: int, task_id: int, step_index: int, step_name: str, reason: str
    ) -> Paused:
        """Report the task paused and wait until it is resumed (a cancelled wait raises, as
        for a stopped task); returns the pause, with how it was resumed."""
        pause = Paused(job_id, task_id, step_index, step_name, reason)
        self.paused[task_id] = pause
        try:
            self._outbox.add(
                TaskPaused(
                    seq=1,
                    task_id=task_id,
                    step_index=step_index,
                    step_name=step_name[:200],
                    reason=reason[:500],
                )
            )
            await pause.resumed.wait()
            return pause
        finally:
            self.paused.pop(task_id, None)
