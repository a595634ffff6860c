"""In-process wake-ups: "job N changed", "devices changed". The store stays the truth.

A waiter takes the job's version before it reads the store and passes it to `wait_job`, which
returns at once if the job changed in between: no wake-up is lost between read and wait.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable


class Signals:
    """Waiters sleep until notified or until their timeout; a missed wake-up only costs time."""

    def __init__(self) -> None:
        self._versions: dict[int, int] = {}
        self._events: dict[int, asyncio.Event] = {}
        self._task_versions: dict[int, int] = {}
        self._task_events: dict[int, asyncio.Event] = {}
        self.devices = asyncio.Event()
        self.changed_agents: set[int] = set()
        self.released: set[str] = set()
        self.released_jobs: set[int] = set()
        self.jobs_submitted = asyncio.Event()
        self.lab = asyncio.Event()
        """Set on any change here (jobs, devices); the lab watch clears it."""

    def job_version(self, job_id: int) -> int:
        """A number that changes whenever job `job_id` is signalled."""
        return self._versions.get(job_id, 0)

    def task_version(self, job_id: int) -> int:
        """A number that changes whenever a task of job `job_id` may have ended (or the job
        was asked to stop): what the job's runner waits for."""
        return self._task_versions.get(job_id, 0)

    def job_changed(self, job_id: int, *, tasks: bool = True) -> None:
        """Wake everything waiting on job `job_id`; `tasks`: its runner too (a task may have
        ended). Logs and steps alone change the job, not what its runner waits for."""
        _bump(self._versions, self._events, job_id)
        if tasks:
            _bump(self._task_versions, self._task_events, job_id)
        self.lab.set()

    def forget_job(self, job_id: int) -> None:
        """Drop a finished job's bookkeeping (its waiters wake up and read the store)."""
        self.job_changed(job_id)
        self._versions.pop(job_id, None)
        self._task_versions.pop(job_id, None)

    async def wait_job(self, job_id: int, seen: int, seconds: float) -> None:
        """Sleep until job `job_id` moves past version `seen`, or `seconds` pass."""
        await _wait(self._versions, self._events, job_id, seen, seconds)

    async def wait_tasks(self, job_id: int, seen: int, seconds: float) -> None:
        """Sleep until job `job_id`'s task version moves past `seen`, or `seconds` pass."""
        await _wait(self._task_versions, self._task_events, job_id, seen, seconds)

    def devices_changed(self, *agent_ids: int) -> None:
        """The devices of `agent_ids` changed in the store (added, gone, offline, back): the
        allocator reads them again and looks at its requests."""
        self.changed_agents.update(agent_ids)
        self.devices.set()
        self.lab.set()

    def devices_released(self, device_ids: Iterable[str]) -> None:
        """This hub gave these devices back (committed): they are free unless offline."""
        self.released.update(device_ids)
        self.devices.set()
        self.lab.set()

    def job_released(self, job_id: int) -> None:
        """This hub gave back every device job `job_id` held (committed)."""
        self.released_jobs.add(job_id)
        self.devices.set()
        self.lab.set()

    def take_changed_agents(self) -> set[int]:
        """The agents whose devices changed in the store since the last call."""
        changed, self.changed_agents = self.changed_agents, set()
        return changed

    def take_released(self) -> set[str]:
        """The devices given back since the last call."""
        released, self.released = self.released, set()
        return released

    def take_released_jobs(self) -> set[int]:
        """The jobs that gave back all their devices since the last call."""
        released, self.released_jobs = self.released_jobs, set()
        return released

    def lab_changed(self) -> None:
        """Something a watcher of the lab may show changed (a job was submitted, say)."""
        self.lab.set()


def _bump(versions: dict[int, int], events: dict[int, asyncio.Event], job_id: int) -> None:
    versions[job_id] = versions.get(job_id, 0) + 1
    event = events.pop(job_id, None)
    if event is not None:
        event.set()


async def _wait(
    versions: dict[int, int],
    events: dict[int, asyncio.Event],
    job_id: int,
    seen: int,
    seconds: float,
) -> None:
    if versions.get(job_id, 0) != seen:
        return
    event = events.setdefault(job_id, asyncio.Event())
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
    except TimeoutError:
        pass
