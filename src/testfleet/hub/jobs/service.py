"""The job API's operations: Start, Stop, Status, Retry, List."""

from __future__ import annotations

import hashlib
import json

from sqlalchemy import Connection

from testfleet.hub.errors import ApiError
from testfleet.hub.jobs.news import JobNews
from testfleet.hub.metrics import HubMetrics
from testfleet.hub.plans import JobPlans
from testfleet.hub.reports.service import job_report
from testfleet.hub.signals import Signals
from testfleet.hub.status import build_status, build_summary
from testfleet.protocol.api import JobList, JobStatus
from testfleet.protocol.descriptor import JobDescriptor
from testfleet.protocol.results import TestReport
from testfleet.protocol.states import JobState
from testfleet.protocol.wire import utcnow
from testfleet.store import job_ops
from testfleet.store import jobs as job_store
from testfleet.store.db import Store
from testfleet.store.deletions import is_deleted
from testfleet.store.job_ops import StopOutcome, Submitted
from testfleet.store.job_tree import JobTree, load_job_tree


def job_not_found(job_id: int) -> ApiError:
    """The 404 of a job id nobody knows."""
    return ApiError(404, "job_not_found", f"job {job_id} does not exist")


class JobService:
    """What the job API asks of the hub; runners and the scheduler do the rest."""

    def __init__(
        self,
        server_id: str,
        store: Store,
        signals: Signals,
        metrics: HubMetrics,
        plans: JobPlans,
        news: JobNews,
    ) -> None:
        self._server_id = server_id
        self._store = store
        self._signals = signals
        self._metrics = metrics
        self._plans = plans
        self._news = news

    async def submit_once(self, descriptor: JobDescriptor, requestor: str, key: str) -> Submitted:
        """Store a new job unless `key` (the requestor's idempotency key) made one already;
        409 if that key was used for another descriptor."""
        dumped = descriptor.model_dump(mode="json")
        request_hash = hashlib.sha256(json.dumps(dumped, sort_keys=True).encode()).hexdigest()
        submitted = await self._store.write(
            job_ops.submit_job_once,
            key=key,
            request_hash=request_hash,
            name=descriptor.name,
            descriptor=dumped,
            tags=descriptor.tags,
            runs=descriptor.runs,
            requestor=requestor,
            now=utcnow(),
        )
        if submitted.conflict:
            raise ApiError(
                409,
                "idempotency_key_reused",
                f"the Idempotency-Key {key!r} was used before for another descriptor; use a "
                "new key for a new job",
            )
        if not submitted.replayed:
            assert submitted.job_id is not None
            self._submitted(submitted.job_id, descriptor)
        return submitted

    async def submit(
        self, descriptor: JobDescriptor, requestor: str, retried_from: int | None = None
    ) -> int:
        """Store a new job (its descriptor checked already); the scheduler picks it up."""
        job_id = await self._store.write(
            job_ops.submit_job,
            name=descriptor.name,
            descriptor=descriptor.model_dump(mode="json"),
            tags=descriptor.tags,
            runs=descriptor.runs,
            requestor=requestor,
            now=utcnow(),
            retried_from=retried_from,
        )
        self._submitted(job_id, descriptor)
        return job_id

    def _submitted(self, job_id: int, descriptor: JobDescriptor) -> None:
        self._plans.remember(job_id, descriptor)
        self._metrics.jobs_submitted.inc()
        self._signals.jobs_submitted.set()
        self._signals.lab_changed()

    async def status(self, job_id: int) -> JobStatus:
        """The full status of one job, with its test cases' counts."""
        tree, report = await self._store.read(_status_parts, job_id)
        if tree is None:
            raise job_not_found(job_id)
        status = build_status(tree, self._server_id)
        status.test_report = report
        return status

    async def stop(self, job_id: int, requestor: str) -> JobState:
        """Ask a job to stop; 404 for an unknown job, 409 if it has finished already."""
        # A finished job stays finished: its refusal needs a read, not a place in a write batch.
        state = await self._store.read(job_store.job_state, job_id)
        if state is None:
            raise job_not_found(job_id)
        if state.finished:
            raise ApiError(409, "job_finished", f"job {job_id} has already finished ({state})")
        result = await self._store.write(job_ops.request_stop, job_id, requestor, utcnow())
        match result.outcome:
            case StopOutcome.NOT_FOUND:
                raise job_not_found(job_id)
            case StopOutcome.ALREADY_FINISHED:
                raise ApiError(
                    409, "job_finished", f"job {job_id} has already finished ({result.state})"
                )
            case StopOutcome.CANCELLING:
                await self._news.stop(job_id)
        self._signals.job_changed(job_id)
        assert result.state is not None
        return result.state

    async def retry(self, job_id: int, requestor: str) -> int:
        """Start a new job with the same descriptor; 409 while the job has not finished."""
        job = await self._store.read(job_store.get_job, job_id)
        if job is None:
            raise job_not_found(job_id)
        if not job.state.finished:
            raise ApiError(
                409,
                "job_not_finished",
                f"job {job_id} is {job.state}; only a finished job can be retried",
            )
        descriptor = JobDescriptor.model_validate(job.descriptor)
        new_id = await self.submit(descriptor, requestor, retried_from=job_id)
        await self._store.write(job_ops.record_retry, job_id, new_id, requestor, utcnow())
        return new_id

    async def list(self, query: job_store.JobQuery) -> JobList:
        """A page of jobs."""
        try:
            jobs, cursor = await self._store.read(job_store.list_jobs, query)
        except job_store.CursorError as error:
            raise ApiError(400, "invalid_cursor", str(error)) from None
        return JobList(
            server_id=self._server_id, jobs=[build_summary(j) for j in jobs], next_cursor=cursor
        )


def _status_parts(conn: Connection, job_id: int) -> tuple[JobTree | None, TestReport | None]:
    """A job's tree and test report, read together (nothing for a job being deleted)."""
    if is_deleted(conn, job_id):
        return None, None
    return load_job_tree(conn, job_id), job_report(conn, job_id)
