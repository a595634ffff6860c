"""Coverage sessions around job steps (a step's `coverage: {app: ...}`).

The agent holds such a step until the hub acknowledges its STEP_STARTED, and the next one
until it acknowledges its STEP_FINISHED; the hub opens the session (and hears the probes'
SESSION_STARTED) before it acknowledges the one, and finishes it before the other. So the
session covers exactly the step. The job's events tell what happened:
`coverage_session_started`, `coverage_session_finished`, `coverage_session_failed`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection

from testfleet.hub.coverage.service import CoverageService
from testfleet.hub.coverage.targets import Target
from testfleet.hub.errors import ApiError
from testfleet.hub.plans import JobPlan, JobPlans
from testfleet.protocol.coverage_api import (
    SessionPayload,
    StartNewSession,
    StartPayload,
    StopSession,
)
from testfleet.protocol.descriptor import StepCoverage
from testfleet.protocol.wire import EventMessage, StepFinished, StepStarted, utcnow
from testfleet.store import events as event_store
from testfleet.store import jobs as job_store
from testfleet.store import tasks as task_store
from testfleet.store.db import Store
from testfleet.store.ingest import TaskIndex

_log = logging.getLogger(__name__)


def session_id_of(task_id: int, step_index: int) -> str:
    """The session of one step of one task (the same on a resent event)."""
    return f"task-{task_id}-step-{step_index}"


class CoverageSteps:
    """Opens and closes the sessions of coverage steps as their events are stored."""

    def __init__(
        self, store: Store, plans: JobPlans, task_index: TaskIndex, coverage: CoverageService
    ) -> None:
        self._store = store
        self._plans = plans
        self._task_index = task_index
        self._coverage = coverage

    async def handle(self, events: Sequence[EventMessage]) -> None:
        """Act on the coverage steps among `events` (stored already, not yet acknowledged)."""
        for event in events:
            if isinstance(event, StepStarted | StepFinished):
                found = await self._coverage_of(event.task_id, event.step_index)
                if found is not None:
                    job_id, label, spec = found
                    if isinstance(event, StepStarted):
                        await self._open(job_id, event, label, spec)
                    else:
                        await self._close(job_id, event)

    async def _coverage_of(
        self, task_id: int, step_index: int
    ) -> tuple[int, str, StepCoverage] | None:
        job_id = self._task_index.cached_job(task_id)
        if job_id is None:
            job_id = await self._store.read(self._task_index.job_of, task_id)
        if job_id is None:
            return None
        plan = self._plans.cached(job_id)
        if plan is None:
            job = await self._store.read(job_store.get_job, job_id)
            if job is None:
                return None
            plan = self._plans.get(job_id, job.descriptor)
        if not _has_coverage(plan):
            return None
        task = await self._store.read(task_store.get_task, task_id)
        if task is None:
            return None
        test = plan.descriptor.tests[task.test_index]
        if step_index >= len(test.steps):
            return None
        step = test.steps[step_index]
        if step.coverage is None:
            return None
        label = f"{plan.descriptor.name}/{test.name}/{step.name}"
        return job_id, label, step.coverage

    async def _open(self, job_id: int, event: StepStarted, label: str, spec: StepCoverage) -> None:
        session_id = session_id_of(event.task_id, event.step_index)
        action = StartNewSession(
            type="START",
            payload=StartPayload(
                sessionId=session_id,
                testType=spec.test_type,
                testName=spec.test_name or label,
                isRealtime=spec.realtime,
                jobId=job_id,
            ),
        )
        try:
            await self._coverage.dispatch(
                Target(app=spec.app, build=spec.build), action, f"job {job_id}"
            )
        except ApiError as error:
            if error.code == "session_exists":
                return  # the event came again (a reconnect): the session is open already
            _log.warning("coverage session for task %d failed: %s", event.task_id, error.message)
            await self._event(job_id, event, "coverage_session_failed", error=error.message)
            return
        await self._event(
            job_id, event, "coverage_session_started", session_id=session_id, app=spec.app
        )

    async def _close(self, job_id: int, event: StepFinished) -> None:
        session_id = session_id_of(event.task_id, event.step_index)
        action = StopSession(type="STOP", payload=SessionPayload(sessionId=session_id))
        try:
            sessions = await self._coverage.dispatch(Target(), action, f"job {job_id}")
        except ApiError:
            return  # never opened (see coverage_session_failed), or closed already
        session = sessions[0]
        await self._event(
            job_id,
            event,
            "coverage_session_finished",
            session_id=session_id,
            covered=session.covered,
            total=session.total,
        )

    async def _event(
        self, job_id: int, event: StepStarted | StepFinished, kind: str, **data: Any
    ) -> None:
        row = event_store.event_row(
            kind,
            utcnow(),
            job_id=job_id,
            task_id=event.task_id,
            data={"step_index": event.step_index, **data},
        )
        await self._store.write(_add, row)


def _add(conn: Connection, row: dict[str, Any]) -> None:
    event_store.add_events(conn, [row])


def _has_coverage(plan: JobPlan) -> bool:
    return any(step.coverage for steps in plan.steps for step in steps)
