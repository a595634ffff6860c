"""In-process wake-ups: "job N changed", "devices changed". The store stays the truth.

A waiter takes the job's version before it reads the store and passes it to `wait_job`, which
returns at once if the job changed in between: no wake-up is lost between read and wait.
"""

from __future__ import annotations

import asyncio


class Signals:
    """Waiters sleep until notified or until their timeout; a missed wake-up only costs time."""

    def __init__(self) -> None:
        self._versions: dict[int, int] = {}
        self._events: dict[int, asyncio.Event] = {}
        self.devices = asyncio.Event()
        self.jobs_submitted = asyncio.Event()
        self.lab = asyncio.Event()
        """Set on any change here (jobs, devices); the lab watch clears it."""

    def job_version(self, job_id: int) -> int:
        """A number that changes whenever job `job_id` is signalled."""
        return self._versions.get(job_id, 0)

    def job_changed(self, job_id: int) -> None:
        """Wake everything waiting on job `job_id`."""
        self._versions[job_id] = self._versions.get(job_id, 0) + 1
        self.lab.set()
        event = self._events.pop(job_id, None)
        if event is not None:
            event.set()

    def forget_job(self, job_id: int) -> None:
        """Drop a finished job's bookkeeping (its waiters wake up and read the store)."""
        self.job_changed(job_id)
        self._versions.pop(job_id, None)

    async def wait_job(self, job_id: int, seen: int, seconds: float) -> None:
        """Sleep until job `job_id` moves past version `seen`, or `seconds` pass."""
        if self._versions.get(job_id, 0) != seen:
            return
        event = self._events.setdefault(job_id, asyncio.Event())
        try:
            async with asyncio.timeout(seconds):
                await event.wait()
        except TimeoutError:
            pass

    def devices_changed(self) -> None:
        """Devices were freed or added: the allocator should look again."""
        self.devices.set()
        self.lab.set()

    def lab_changed(self) -> None:
        """Something a watcher of the lab may show changed (a job was submitted, say)."""
        self.lab.set()
