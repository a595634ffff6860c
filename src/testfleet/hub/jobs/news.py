"""News for a job's runner, wherever it runs: "your job changed", "stop your job" (to the
hub that owns the job's lease; to every hub while none does)."""

from __future__ import annotations

from testfleet.hub.jobs.runners import RunnerRegistry
from testfleet.hub.relay import Relay
from testfleet.hub.signals import Signals
from testfleet.store.addresses import runner_of_job


class JobNews:
    """Wakes a job's runner on this hub, or tells the hub that runs it."""

    def __init__(self, signals: Signals, relay: Relay, runners: RunnerRegistry) -> None:
        self._signals = signals
        self._relay = relay
        self._runners = runners
        relay.handle("job", self._notified_change)
        relay.handle("job_stop", self._notified_stop)

    async def changed(self, job_id: int, *, tasks: bool = True) -> None:
        """The job changed: wake anyone following it here and, if a task may have ended
        (`tasks`), its runner, wherever it runs."""
        self._signals.job_changed(job_id, tasks=tasks)
        if tasks and self._relay.enabled and job_id not in self._runners:
            await self._relay.publish("job", job_id, to=runner_of_job)

    async def stop(self, job_id: int) -> None:
        """Someone asked to stop the job: tell its runner."""
        runner = self._runners.get(job_id)
        if runner is not None:
            runner.request_stop()
        elif self._relay.enabled:
            await self._relay.publish("job_stop", job_id, to=runner_of_job)

    async def _notified_change(self, job_id: int) -> bool:
        if job_id not in self._runners:  # only runners care; a follower looks every second
            return False
        self._signals.job_changed(job_id)
        return True

    async def _notified_stop(self, job_id: int) -> bool:
        runner = self._runners.get(job_id)
        if runner is None:
            return False
        runner.request_stop()
        return True
