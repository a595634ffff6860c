"""What a job's runner and its tests' runners share: their collaborators and the job's state."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from testfleet.hub.allocator import DeviceAllocator
from testfleet.hub.delivery import Delivery
from testfleet.hub.jobs.pending import PendingWrites
from testfleet.hub.metrics import HubMetrics
from testfleet.hub.plans import JobPlans
from testfleet.hub.signals import Signals
from testfleet.store.db import Store
from testfleet.store.ingest import TaskIndex


@dataclass(frozen=True)
class RunnerDeps:
    """The collaborators every runner uses (one set per hub)."""

    store: Store
    signals: Signals
    metrics: HubMetrics
    allocator: DeviceAllocator
    delivery: Delivery
    plans: JobPlans
    task_index: TaskIndex
    server_id: str
    stop_grace: float
    """Seconds agents get to stop a job's tasks before the hub ends them cancelled."""


class Stopped(Exception):
    """The job was asked to stop."""


@dataclass(eq=False)
class JobContext:
    """One running job: its id, its pending writes, whether it must stop, what it holds."""

    job_id: int
    deps: RunnerDeps
    stop_requested: asyncio.Event = field(default_factory=asyncio.Event)
    holding: set[str] = field(default_factory=set)
    """Devices claimed and not yet (deferred-)released."""
    writes: PendingWrites = field(init=False)

    def __post_init__(self) -> None:
        self.writes = PendingWrites(self.deps.store, self.deps.signals, self.job_id)

    def request_stop(self) -> None:
        """Ask the runner to stop at its next wait."""
        if self.stop_requested.is_set():
            return
        self.stop_requested.set()
        self.deps.signals.job_changed(self.job_id)

    async def pause(self, seconds: float) -> None:
        """Commit what is pending, then sleep; raise Stopped if a stop request comes first."""
        if seconds <= 0:
            return
        await self.writes.commit()
        try:
            async with asyncio.timeout(seconds):
                await self.stop_requested.wait()
        except TimeoutError:
            return
        raise Stopped
