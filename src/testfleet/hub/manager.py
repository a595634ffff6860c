"""The job manager: Start, Stop, Status, Retry, List; claims jobs and keeps their leases."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from testfleet.hub.errors import ApiError
from testfleet.hub.runner import JobRunner
from testfleet.hub.status import build_status, build_summary
from testfleet.protocol.api import JobList, JobStatus
from testfleet.protocol.descriptor import JobDescriptor, TestDescriptor
from testfleet.protocol.states import FINISHED_JOB_STATES, JobState
from testfleet.protocol.wire import RunTask, StepSpec, utcnow
from testfleet.store import inventory
from testfleet.store import jobs as job_store
from testfleet.store.events import add_events, event_row
from testfleet.store.writer import is_unavailable

if TYPE_CHECKING:
    from testfleet.hub.runtime import Hub

_log = logging.getLogger(__name__)
_CLAIM_POLL = 1.0
_CLAIM_BATCH = 200
_ORPHAN_CHECK = 2.0  # seconds between looks for jobs of dead hubs
_RESUME_AFTER = 2.0  # seconds before a runner stopped by a store error starts again


def _not_found(job_id: int) -> ApiError:
    return ApiError(404, "job_not_found", f"job {job_id} does not exist")


@dataclass(frozen=True)
class _Renewal:
    expired: Sequence[Any]
    stopping: list[int]


class JobManager:
    """Owns the runners of the jobs this hub runs."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.runners: dict[int, JobRunner] = {}
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._claimed_own = False
        self._closing = False
        self._orphans_checked = float("-inf")

    # ---- the API ------------------------------------------------------------------------------

    async def start(
        self, descriptor: JobDescriptor, requestor: str, retried_from: int | None = None
    ) -> int:
        """Store a new job; a runner picks it up at once."""
        now = utcnow()

        def work(conn: Connection) -> int:
            job_id = job_store.insert_job(
                conn,
                name=descriptor.name,
                descriptor=descriptor.model_dump(mode="json"),
                tags=descriptor.tags,
                runs=descriptor.runs,
                requestor=requestor,
                now=now,
                retried_from=retried_from,
            )
            add_events(
                conn,
                [
                    event_row(
                        "job_queued",
                        now,
                        job_id=job_id,
                        data={"requestor": requestor, "retried_from": retried_from},
                    )
                ],
            )
            return job_id

        job_id = await self.hub.store.write(work)
        self.hub.metrics.jobs_submitted.inc()
        self.hub.signals.jobs_submitted.set()
        return job_id

    async def status(self, job_id: int) -> JobStatus:
        """The full status of one job."""
        tree = await self.hub.store.read(job_store.load_job_tree, job_id)
        if tree is None:
            raise _not_found(job_id)
        return build_status(tree, self.hub.server_id)

    async def stop(self, job_id: int, requestor: str) -> JobState:
        """Ask a job to stop; 409 if it has finished already."""
        now = utcnow()

        def work(conn: Connection) -> JobState:
            job = job_store.lock_job(conn, job_id)
            if job is None:
                raise _not_found(job_id)
            if JobState(job.state) in FINISHED_JOB_STATES:
                raise ApiError(
                    409, "job_finished", f"job {job_id} has already finished ({job.state})"
                )
            rows = [
                event_row("job_stop_requested", now, job_id=job_id, data={"requestor": requestor})
            ]
            if job.state == JobState.QUEUED and job.owner is None:
                state = JobState.CANCELLED
                error = "stopped before it started"
                job_store.update_job(
                    conn, job_id, state=state, ended_at=now, error=error, stop_requested=True
                )
                rows.append(
                    event_row(
                        "job_finished", now, job_id=job_id, data={"state": state, "error": error}
                    )
                )
            else:
                state = JobState.CANCELLING
                job_store.update_job(conn, job_id, state=state, stop_requested=True)
            add_events(conn, rows)
            return state

        state = await self.hub.store.write(work)
        if state == JobState.CANCELLING:
            await self.hub.relay.stop_job(job_id)
        self.hub.signals.job_changed(job_id)
        return state

    async def retry(self, job_id: int, requestor: str) -> int:
        """Start a new job with the same descriptor; 409 while the job has not finished."""
        job = await self.hub.store.read(job_store.get_job, job_id)
        if job is None:
            raise _not_found(job_id)
        if not JobState(job.state).finished:
            raise ApiError(
                409,
                "job_not_finished",
                f"job {job_id} is {job.state}; only a finished job can be retried",
            )
        descriptor = JobDescriptor.model_validate(job.descriptor)
        new_id = await self.start(descriptor, requestor, retried_from=job_id)
        await self.hub.store.write(
            add_events,
            [
                event_row(
                    "job_retried",
                    utcnow(),
                    job_id=job_id,
                    data={"requestor": requestor, "new_job_id": new_id},
                )
            ],
        )
        return new_id

    async def list(self, query: job_store.JobQuery) -> JobList:
        """A page of jobs."""
        try:
            rows, cursor = await self.hub.store.read(job_store.list_jobs, query)
        except job_store.CursorError as error:
            raise ApiError(400, "invalid_cursor", str(error)) from None
        return JobList(
            server_id=self.hub.server_id, jobs=[build_summary(r) for r in rows], next_cursor=cursor
        )

    # ---- talking to agents ----------------------------------------------------------------------

    def run_task_message(
        self, task_id: int, job_id: int, device_name: str, test: TestDescriptor
    ) -> RunTask:
        """The RUN_TASK an agent gets for one task."""
        return RunTask(
            task_id=task_id,
            job_id=job_id,
            device_name=device_name,
            steps=[
                StepSpec(name=s.name, plugin=s.plugin, params=s.params, timeout=s.timeout)
                for s in test.steps
            ],
        )

    async def dispatch(self, task_id: int) -> bool:
        """(Re)send a pending task to its agent; False if the agent is not connected here."""
        task, job = await self.hub.store.read(job_store.task_with_job, task_id)
        if task is None or job is None:
            return False
        return self.send_task(task, job)

    def send_task(self, task: Any, job: Any) -> bool:
        """Send RUN_TASK for a task row of a job row; False if its agent is not here."""
        test = JobDescriptor.model_validate(job.descriptor).tests[task.test_index]
        return self.hub.agents.send(
            task.agent_id, self.run_task_message(task.id, task.job_id, task.device_name, test)
        )

    # ---- running jobs -----------------------------------------------------------------------

    async def run(self) -> None:
        """Claim queued jobs (and jobs of dead hubs) and run them, until cancelled."""
        wake = self.hub.signals.jobs_submitted
        while True:
            wake.clear()
            try:
                await self._claim()
            except Exception:
                _log.exception("claiming jobs failed; retrying")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_CLAIM_POLL):
                    await wake.wait()

    async def _claim(self) -> None:
        room = self.hub.config.max_running_jobs - len(self._tasks)
        if room <= 0:
            return
        now = utcnow()
        lease = now + timedelta(seconds=self.hub.config.job_lease_ttl)
        loop_time = asyncio.get_running_loop().time()
        orphans = loop_time - self._orphans_checked >= _ORPHAN_CHECK
        if orphans:
            self._orphans_checked = loop_time
        claimed = await self.hub.store.write(
            job_store.claim_jobs,
            self.hub.server_id,
            now,
            lease,
            min(room, _CLAIM_BATCH),
            orphans=orphans,
            include_own=not self._claimed_own,
        )
        self._claimed_own = True
        for claim in claimed:
            if claim.job_id not in self._tasks:
                self._spawn(claim)
        if len(claimed) == _CLAIM_BATCH:
            self.hub.signals.jobs_submitted.set()

    def _spawn(self, claim: job_store.Claim) -> None:
        self._start(JobRunner(self.hub, claim.job_id, claim))

    def _start(self, runner: JobRunner) -> None:
        job_id = runner.job_id
        self.runners[job_id] = runner
        self._tasks[job_id] = asyncio.create_task(self._guard(runner), name=f"job-{job_id}")

    async def _guard(self, runner: JobRunner) -> None:
        again = False
        try:
            await runner.run()
        except asyncio.CancelledError:
            raise
        except Exception as error:
            if is_unavailable(error):  # the job is fine; its runner carries on from the store
                _log.warning(
                    "job %d: the store failed (%r); resuming it shortly", runner.job_id, error
                )
                again = True
            else:
                _log.exception("job %d runner crashed", runner.job_id)
                await self._fail(runner.job_id, f"internal error: {error!r}")
        finally:
            self.runners.pop(runner.job_id, None)
            self._tasks.pop(runner.job_id, None)
            if again and not self._closing:
                asyncio.get_running_loop().call_later(_RESUME_AFTER, self._resume, runner.job_id)

    def _resume(self, job_id: int) -> None:
        """Run a job again from what the store holds (its runner stopped on a store error)."""
        if not self._closing and job_id not in self._tasks:
            self._start(JobRunner(self.hub, job_id))

    async def _fail(self, job_id: int, error: str) -> None:
        now = utcnow()

        def work(conn: Connection) -> None:
            inventory.release_job_devices(conn, job_id)
            job_store.update_job(conn, job_id, state=JobState.FAILED, ended_at=now, error=error)
            add_events(
                conn,
                [
                    event_row(
                        "job_finished",
                        now,
                        job_id=job_id,
                        data={"state": JobState.FAILED, "error": error},
                    )
                ],
            )

        with contextlib.suppress(Exception):
            await self.hub.store.write(work)
            self.hub.signals.job_changed(job_id)

    async def keep_leases(self) -> None:
        """Renew this hub's job and device leases; free devices whose holder died; notice
        stop requests made through another hub."""
        config = self.hub.config
        interval = min(config.job_lease_ttl, config.device_lease_ttl) / 3
        while True:
            await asyncio.sleep(interval)
            try:
                await self._renew()
            except Exception:
                _log.exception("lease renewal failed; retrying")

    async def _renew(self) -> None:
        ids = list(self._tasks)
        renewal = await self.hub.store.write(
            _renew_leases,
            self.hub.server_id,
            ids,
            utcnow(),
            self.hub.config.job_lease_ttl,
            self.hub.config.device_lease_ttl,
        )
        for row in renewal.expired:
            _log.warning(
                "lease of device %s (job %s) ran out; it is free again", row.id, row.holder_job_id
            )
        if renewal.expired:
            self.hub.signals.devices_changed()
        for job_id in renewal.stopping:
            runner = self.runners.get(job_id)
            if runner is not None and not runner.stop_requested.is_set():
                runner.request_stop()

    async def shutdown(self) -> None:
        """Stop every runner without touching the jobs: the next hub carries on."""
        self._closing = True
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _renew_leases(
    conn: Connection, owner: str, ids: list[int], now: datetime, job_ttl: float, device_ttl: float
) -> _Renewal:
    inventory.renew_leases(conn, ids, now + timedelta(seconds=device_ttl))
    expired = inventory.expire_leases(conn, now)
    job_store.renew_job_leases(conn, owner, ids, now + timedelta(seconds=job_ttl))
    stopping: list[int] = []
    if ids:
        rows, _ = job_store.list_jobs(
            conn, job_store.JobQuery(ids=ids, states=[JobState.CANCELLING], limit=len(ids))
        )
        stopping = [row.id for row in rows]
    return _Renewal(expired=expired, stopping=stopping)
