"""In-process wake-ups: "job N changed", "devices changed". The store stays the truth."""

from __future__ import annotations

import asyncio
from collections import defaultdict


class Signals:
    """Waiters sleep until notified or until their timeout; a missed wake-up only costs time."""

    def __init__(self) -> None:
        self._jobs: defaultdict[int, asyncio.Event] = defaultdict(asyncio.Event)
        self.devices = asyncio.Event()
        self.jobs_submitted = asyncio.Event()

    def job_changed(self, job_id: int) -> None:
        """Wake everything waiting on job `job_id`."""
        event = self._jobs.pop(job_id, None)
        if event is not None:
            event.set()

    async def wait_job(self, job_id: int, seconds: float) -> None:
        """Sleep until job `job_id` changes or `seconds` pass."""
        event = self._jobs[job_id]
        try:
            async with asyncio.timeout(seconds):
                await event.wait()
        except TimeoutError:
            pass

    def devices_changed(self) -> None:
        """Devices were freed or added: the allocator should look again."""
        self.devices.set()
