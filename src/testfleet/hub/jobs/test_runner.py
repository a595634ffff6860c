"""Run one test of one run: attempts until it passes or its retries are spent.

An attempt claims devices, creates a task per device (sent to their agents by delivery),
and waits until every task has ended; a stop request stops the tasks first.
"""

from __future__ import annotations

import asyncio
from asyncio import FIRST_COMPLETED
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import NoReturn

from sqlalchemy import Connection

from testfleet.hub.allocator import Device
from testfleet.hub.jobs import progress
from testfleet.hub.jobs.context import JobContext, Stopped
from testfleet.hub.plans import JobPlan
from testfleet.hub.reporters import Outcome
from testfleet.hub.waiting import explain
from testfleet.protocol.descriptor import DeviceRequest, TestDescriptor
from testfleet.protocol.durations import format_duration
from testfleet.protocol.states import RunState
from testfleet.protocol.wire import utcnow
from testfleet.store import job_progress
from testfleet.store import tasks as task_store
from testfleet.store.records import TaskRecord, TestRecord
from testfleet.store.task_ends import end_tasks

RECHECK = 1.0  # seconds between looks at the store while nothing signals a change
RESEND = 5.0  # seconds a task may stay pending before RUN_TASK goes out again
STOP_RECHECK = 0.2  # seconds between looks while waiting for agents to stop tasks
# Seconds a device request may wait before the test says why. In a burst of jobs most waits
# are about that long; saying why after 50 ms cost about 7 % of the hub's CPU per job.
EXPLAIN_AFTER = 1.0
EXPLAIN_EVERY = 5.0  # seconds between looks at why it still waits


@dataclass(frozen=True)
class TestResult:
    """How one test of one run ended."""

    __test__ = False  # not a pytest class

    state: RunState
    error: str | None
    outcomes: list[Outcome]


class TestRunner:
    """Runs test `index` of run `run` of a job."""

    __test__ = False  # not a pytest class

    def __init__(self, job: JobContext, plan: JobPlan, run: int, index: int) -> None:
        self.job = job
        self.plan = plan
        self.run_number = run
        self.index = index
        self.test: TestDescriptor = plan.descriptor.tests[index]
        self.waiting: str | None = None
        """Why the test waits for devices, while it does."""

    async def run(self, record: TestRecord | None) -> TestResult:
        """Run the test, or carry on from `record` (the test as an earlier runner left it)."""
        store = self.job.deps.store
        if record is not None and record.state.finished:
            ended = await store.read(self._tasks_of, record.attempts)
            return TestResult(record.state, record.error, self._outcomes(ended))
        attempt = record.attempts if record is not None else 0
        tasks: list[TaskRecord] = []
        if record is None:
            self._defer_start()
        elif attempt > 0:  # taken over mid-attempt: wait for that attempt's tasks
            tasks = await self._wait(await store.read(self._tasks_of, attempt), seen=None)
        avoid: set[str] = set()
        error: str | None = None
        try:
            while True:
                if tasks:
                    after = progress.after_attempt(
                        tasks,
                        attempt,
                        self.test.retry.count,
                        self.plan.descriptor.reporting.run_reporters,
                    )
                    if after.done:
                        break
                    avoid |= after.avoid
                    self._release(tasks)
                    await self.job.writes.commit()
                    await self.job.pause(self.test.retry.interval)
                attempt += 1
                devices = await self._acquire(self.test.devices, avoid)
                if devices is None:
                    tasks = []
                    error = progress.no_devices_message(self.test.devices, self.waiting)
                    break
                tasks = await self._start_attempt(attempt, devices)
        except Stopped:
            self._defer_end(RunState.CANCELLED, "stopped on request", tasks)
            raise
        reporters = self.plan.descriptor.reporting.run_reporters
        passed = bool(tasks) and progress.attempt_passed(tasks, reporters)
        state = RunState.PASSED if passed else RunState.FAILED
        if not passed and error is None:
            error = progress.task_failures(tasks)
        self._defer_end(state, error, tasks)
        return TestResult(state, error, self._outcomes(tasks))

    def _outcomes(self, tasks: Sequence[TaskRecord]) -> list[Outcome]:
        return progress.outcomes(self.test.name, tasks)

    def _tasks_of(self, conn: Connection, attempt: int) -> list[TaskRecord]:
        return task_store.tasks_of_test(conn, self.job.job_id, self.run_number, self.index, attempt)

    # ---- writes -------------------------------------------------------------------------------

    def _defer_start(self) -> None:
        self.job.writes.defer(
            partial(
                job_progress.start_test,
                job_id=self.job.job_id,
                run=self.run_number,
                index=self.index,
                name=self.test.name,
                now=utcnow(),
            )
        )

    def _release(self, tasks: Sequence[TaskRecord]) -> None:
        device_ids = [t.device_id for t in tasks]
        if device_ids:
            self.job.writes.defer(
                partial(
                    job_progress.release_devices, job_id=self.job.job_id, device_ids=device_ids
                ),
                frees=device_ids,
            )
            self.job.holding.difference_update(device_ids)

    def _defer_end(self, state: RunState, error: str | None, tasks: Sequence[TaskRecord]) -> None:
        """Record the test's end and give back the devices of its last attempt."""
        self._release(tasks)
        self.job.writes.defer(
            partial(
                job_progress.end_test,
                job_id=self.job.job_id,
                run=self.run_number,
                index=self.index,
                name=self.test.name,
                state=state,
                error=error,
                now=utcnow(),
            )
        )

    # ---- an attempt ---------------------------------------------------------------------------

    async def _acquire(self, want: DeviceRequest, avoid: set[str]) -> list[Device] | None:
        """Claim devices, or None after the request's timeout; Stopped on a stop request.

        A request not met within `EXPLAIN_AFTER` says why it waits (`waiting` on the test, and a
        `test_waiting` event), looked at again every `EXPLAIN_EVERY` seconds."""
        await self.job.writes.commit()  # devices given back must be free before we ask
        deps = self.job.deps
        acquire = asyncio.ensure_future(deps.allocator.acquire(self.job.job_id, want, avoid))
        stop = asyncio.ensure_future(self.job.stop_requested.wait())
        loop = asyncio.get_running_loop()
        deadline = loop.time() + want.timeout
        pause = EXPLAIN_AFTER
        self.waiting = None
        try:
            while not acquire.done() and not stop.done():
                left = deadline - loop.time()
                if left <= 0:
                    break
                await asyncio.wait(
                    {acquire, stop}, timeout=min(left, pause), return_when=FIRST_COMPLETED
                )
                if not acquire.done() and not stop.done() and loop.time() < deadline:
                    await self._explain(want)
                    pause = EXPLAIN_EVERY
        finally:
            stop.cancel()
            if not acquire.done():
                acquire.cancel()
                await asyncio.gather(acquire, return_exceptions=True)
        if acquire.done() and not acquire.cancelled() and acquire.exception() is None:
            devices = acquire.result()
            self.job.holding.update(d.id for d in devices)
            return devices
        if self.job.stop_requested.is_set():
            raise Stopped
        return None

    async def _explain(self, want: DeviceRequest) -> None:
        """Record why the test waits, if that changed."""
        reason = explain(want, self.job.deps.allocator.index)
        if reason != self.waiting:
            self.waiting = reason
            await self.job.writes.commit(
                partial(
                    job_progress.set_waiting,
                    job_id=self.job.job_id,
                    run=self.run_number,
                    index=self.index,
                    reason=reason,
                    now=utcnow(),
                )
            )

    async def _start_attempt(self, attempt: int, devices: Sequence[Device]) -> list[TaskRecord]:
        """Create the attempt's tasks, send them, and wait for them to end."""
        deps = self.job.deps
        route = deps.delivery.route(d.agent_id for d in devices)
        new = [
            task_store.NewTask(
                device_id=d.id,
                device_name=d.name,
                agent_id=d.agent_id,
                steps=[(s.name, s.plugin) for s in self.test.steps],
            )
            for d in devices
        ]
        created: list[TaskRecord] = []

        def create(conn: Connection) -> None:
            created[:] = job_progress.start_attempt(
                conn,
                self.job.job_id,
                self.run_number,
                self.index,
                attempt,
                new,
                [d.agent_name for d in devices],
                utcnow(),
                route.announce,
            )

        await self.job.writes.commit(create)
        seen = deps.signals.task_version(self.job.job_id)
        for task in created:
            deps.task_index.remember(task.id, self.job.job_id, task.agent_id)
        await deps.delivery.send_created(route, created, self.plan)
        return await self._wait(created, seen=seen)

    async def _wait(self, tasks: Sequence[TaskRecord], seen: int | None) -> list[TaskRecord]:
        """Wait until every task has ended; on a stop request, stop them first.

        `seen` is the job's version when the tasks were created: nothing to read before the
        job changes again. Without it (a job taken over), tasks still pending are sent again
        at once; either way, every `RESEND` seconds while they stay pending.
        """
        deps = self.job.deps
        ids = [t.id for t in tasks]
        loop = asyncio.get_running_loop()
        resend_at = loop.time() + (RESEND if seen is not None else 0.0)
        if seen is not None:
            await deps.signals.wait_tasks(self.job.job_id, seen, RECHECK)
        while True:
            seen = deps.signals.task_version(self.job.job_id)
            current = await deps.store.read(task_store.get_tasks, ids)
            if all(t.finished for t in current):
                return current
            if self.job.stop_requested.is_set():
                await self._stop([t for t in current if not t.finished])
            if loop.time() >= resend_at:
                await deps.delivery.resend([t for t in current if t.state == RunState.PENDING])
                resend_at = loop.time() + RESEND
            await deps.signals.wait_tasks(self.job.job_id, seen, RECHECK)

    async def _stop(self, tasks: Sequence[TaskRecord]) -> NoReturn:
        """Ask agents to stop the tasks; those not ended within the grace end cancelled."""
        deps = self.job.deps
        await deps.delivery.stop(tasks, "job stopped")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + deps.stop_grace
        ids = [t.id for t in tasks]
        while loop.time() < deadline:
            seen = deps.signals.task_version(self.job.job_id)
            current = await deps.store.read(task_store.get_tasks, ids)
            if all(t.finished for t in current):
                raise Stopped
            await deps.signals.wait_tasks(self.job.job_id, seen, STOP_RECHECK)
        reason = f"not stopped by its agent within {format_duration(deps.stop_grace)}"
        await self.job.writes.commit(
            partial(end_tasks, tasks=tasks, state=RunState.CANCELLED, reason=reason, now=utcnow())
        )
        raise Stopped
