"""Which jobs this hub runs: it claims queued jobs (and those of dead hubs), launches a
runner for each, starts one again after a store error, and keeps the leases of all of them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import timedelta

from testfleet.hub.config import HubConfig
from testfleet.hub.jobs.runner import JobRunner
from testfleet.hub.jobs.runners import RunnerRegistry
from testfleet.hub.signals import Signals
from testfleet.protocol.wire import utcnow
from testfleet.store import job_ops
from testfleet.store import jobs as job_store
from testfleet.store.db import Store
from testfleet.store.writer import is_unavailable

_log = logging.getLogger(__name__)
CLAIM_POLL = 1.0  # seconds between looks for queued jobs when nobody signals one
CLAIM_BATCH = 200
ORPHAN_CHECK = 2.0  # seconds between looks for jobs of dead hubs
RELAUNCH_AFTER = 2.0  # seconds before a runner stopped by a store error starts again

NewRunner = Callable[[int, job_store.Claim | None], JobRunner]


class Scheduler:
    """Claims jobs and runs them, each in its own asyncio task."""

    def __init__(
        self,
        config: HubConfig,
        store: Store,
        signals: Signals,
        runners: RunnerRegistry,
        new_runner: NewRunner,
    ) -> None:
        self._config = config
        self._store = store
        self._signals = signals
        self._runners = runners
        self._new_runner = new_runner
        self._server_id = config.effective_server_id
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._claimed_own = False
        self._closing = False
        self._orphans_checked = float("-inf")

    async def claim_forever(self) -> None:
        """Claim jobs as they are submitted (and every `CLAIM_POLL` s), until cancelled."""
        wake = self._signals.jobs_submitted
        while True:
            wake.clear()
            try:
                await self._claim()
            except Exception:
                _log.exception("claiming jobs failed; retrying")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(CLAIM_POLL):
                    await wake.wait()

    async def _claim(self) -> None:
        room = self._config.max_running_jobs - len(self._tasks)
        if room <= 0:
            return
        now = utcnow()
        lease = now + timedelta(seconds=self._config.job_lease_ttl)
        loop_time = asyncio.get_running_loop().time()
        orphans = loop_time - self._orphans_checked >= ORPHAN_CHECK
        if orphans:
            self._orphans_checked = loop_time
        claimed = await self._store.write(
            job_store.claim_jobs,
            self._server_id,
            now,
            lease,
            min(room, CLAIM_BATCH),
            orphans=orphans,
            include_own=not self._claimed_own,
        )
        self._claimed_own = True
        for claim in claimed:
            if claim.job_id not in self._tasks:
                self._launch(self._new_runner(claim.job_id, claim))
        if len(claimed) == CLAIM_BATCH:
            self._signals.jobs_submitted.set()

    def _launch(self, runner: JobRunner) -> None:
        """Run `runner` in a task of its own."""
        job_id = runner.job_id
        self._runners.add(job_id, runner)
        self._tasks[job_id] = asyncio.create_task(self._run_guarded(runner), name=f"job-{job_id}")

    async def _run_guarded(self, runner: JobRunner) -> None:
        """Run a job; a store error relaunches it shortly, any other error fails it."""
        relaunch = False
        try:
            await runner.run()
        except asyncio.CancelledError:
            raise
        except Exception as error:
            if is_unavailable(error):  # the job is fine; its runner carries on from the store
                _log.warning(
                    "job %d: the store failed (%r); resuming it shortly", runner.job_id, error
                )
                relaunch = True
            else:
                _log.exception("job %d runner crashed", runner.job_id)
                await self._fail(runner.job_id, f"internal error: {error!r}")
        finally:
            self._runners.remove(runner.job_id)
            self._tasks.pop(runner.job_id, None)
            if relaunch and not self._closing:
                loop = asyncio.get_running_loop()
                loop.call_later(RELAUNCH_AFTER, self._relaunch, runner.job_id)

    def _relaunch(self, job_id: int) -> None:
        """Run a job again from what the store holds (its runner stopped on a store error)."""
        if not self._closing and job_id not in self._tasks:
            self._launch(self._new_runner(job_id, None))

    async def _fail(self, job_id: int, error: str) -> None:
        with contextlib.suppress(Exception):
            await self._store.write(job_ops.fail_job, job_id, error, utcnow())
            self._signals.job_changed(job_id)
            self._signals.job_released(job_id)

    async def keep_leases(self) -> None:
        """Renew this hub's job and device leases; free devices whose holder died; notice
        stop requests made through another hub. Until cancelled."""
        config = self._config
        interval = min(config.job_lease_ttl, config.device_lease_ttl) / 3
        while True:
            await asyncio.sleep(interval)
            try:
                await self._renew()
            except Exception:
                _log.exception("lease renewal failed; retrying")

    async def _renew(self) -> None:
        renewal = await self._store.write(
            job_ops.renew_leases,
            self._server_id,
            list(self._tasks),
            utcnow(),
            self._config.job_lease_ttl,
            self._config.device_lease_ttl,
        )
        for device in renewal.expired:
            _log.warning("the lease on device %s ran out; it is free again", device)
        if renewal.expired:
            self._signals.devices_released(renewal.expired)
        for job_id in renewal.stopping:
            runner = self._runners.get(job_id)
            if runner is not None:
                runner.request_stop()
        for job_id in renewal.taken_over:
            task = self._tasks.get(job_id)
            if task is not None:  # the other hub runs it now: leave it alone
                _log.warning("job %d was taken over by another hub; no longer running it", job_id)
                task.cancel()

    async def shutdown(self) -> None:
        """Stop every runner without touching the jobs: the next hub carries on."""
        self._closing = True
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
