"""Run one job: its runs one after another, each test's tasks in parallel on its devices.

Every decision is read back from the store, so a runner started on a job that another (dead)
runner left half-done carries on where that one stopped.

Writes that nothing waits on (a test's end, say) are deferred and committed together with the
next write, so a one-test job costs a handful of transactions; the store still holds every
fact before anything depends on it (devices are given back before the next test asks).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from testfleet.hub.allocator import Device
from testfleet.hub.reporters import Outcome, report, target_success_passes
from testfleet.hub.task_ends import end_tasks
from testfleet.protocol.api import ReporterResult
from testfleet.protocol.descriptor import DeviceRequest, JobDescriptor, TestDescriptor
from testfleet.protocol.durations import format_duration
from testfleet.protocol.states import JobState, RunState
from testfleet.protocol.wire import StopTask, utcnow
from testfleet.store import inventory
from testfleet.store import jobs as job_store
from testfleet.store.events import add_events, event_row
from testfleet.store.notify import notify

if TYPE_CHECKING:
    from testfleet.hub.runtime import Hub

_log = logging.getLogger(__name__)
_RECHECK = 1.0
_RESEND = 5.0  # seconds a task may stay pending before RUN_TASK goes out again

Write = Callable[[Connection], list[dict[str, Any]]]
"""A piece of a transaction: changes rows, returns the events to append."""


class Stopped(Exception):
    """The job was asked to stop."""


@dataclass
class TestResult:
    """How one test of one run ended."""

    __test__ = False

    state: RunState
    error: str | None
    outcomes: list[Outcome]


class JobRunner:
    """Drives one job to its end."""

    def __init__(self, hub: Hub, job_id: int, claim: job_store.Claim | None = None) -> None:
        self.hub = hub
        self.job_id = job_id
        self.claim = claim
        self.stop_requested = asyncio.Event()
        self.descriptor: JobDescriptor | None = None
        self._deferred: list[Write] = []
        self.seen = 0  # the job's signal version when its last tasks were created
        self._releasing = False  # a deferred write gives devices back
        self._holding: set[str] = set()  # devices claimed and not yet (deferred-)released

    def request_stop(self) -> None:
        """Ask the runner to stop at its next wait."""
        self.stop_requested.set()
        self.hub.signals.job_changed(self.job_id)

    # ---- writing ------------------------------------------------------------------------------

    def _defer(self, write: Write) -> None:
        self._deferred.append(write)

    async def _write(self, *writes: Write) -> None:
        """Commit the deferred writes and `writes` in one transaction."""
        pending = [*self._deferred, *writes]
        releasing = self._releasing
        self._deferred = []
        self._releasing = False
        if not pending:
            return

        def work(conn: Connection) -> None:
            rows: list[dict[str, Any]] = []
            for write in pending:
                rows.extend(write(conn))
            add_events(conn, rows)

        await self.hub.store.write(work)
        self.hub.signals.job_changed(self.job_id)
        if releasing:
            self.hub.signals.devices_changed()

    def _event(self, kind: str, at: datetime, **data: Any) -> dict[str, Any]:
        return event_row(kind, at, job_id=self.job_id, data=data)

    # ---- the job ----------------------------------------------------------------------------

    async def run(self) -> None:
        """Run the job to a final state."""
        claim = self.claim
        tree = None
        if claim is not None and claim.fresh and claim.descriptor is not None:
            descriptor_data, stop_requested = claim.descriptor, claim.stop_requested
        else:  # another runner may have left it half done
            tree = await self.hub.store.write(_resume, self.job_id)
            self.hub.signals.devices_changed()
            if tree is None or JobState(tree.job.state).finished:
                return
            descriptor_data, stop_requested = tree.job.descriptor, tree.job.stop_requested
            if tree.job.state == JobState.QUEUED:
                tree = None  # it never started: a fresh start
        self.descriptor = descriptor = JobDescriptor.model_validate(descriptor_data)
        if stop_requested:
            self.stop_requested.set()
        try:
            if self.stop_requested.is_set():
                raise Stopped
            ok, error, outcomes = await self._run_all(descriptor, tree)
            results = await self._final_reporters(descriptor, outcomes, resumed=tree is not None)
            if not all(r.success for r in results):
                ok = False
                error = error or "; ".join(r.message for r in results if not r.success)
            await self._finish(JobState.COMPLETED if ok else JobState.FAILED, error, results)
        except Stopped:
            await self._finish(JobState.CANCELLED, "stopped on request", [])

    async def _finish(
        self, state: JobState, error: str | None, results: Sequence[ReporterResult]
    ) -> None:
        now = utcnow()

        release_all = bool(self._holding) or not (self.claim and self.claim.fresh)

        def finish(conn: Connection) -> list[dict[str, Any]]:
            if release_all:
                inventory.release_job_devices(conn, self.job_id)
            job_store.update_job(
                conn,
                self.job_id,
                state=state,
                ended_at=now,
                error=error,
                final_reporters=[r.model_dump(mode="json") for r in results],
            )
            return [self._event("job_finished", now, state=state, error=error)]

        await self._write(finish)
        self.hub.metrics.jobs_finished.labels(state=str(state)).inc()
        self.hub.signals.forget_job(self.job_id)
        self.hub.signals.devices_changed()
        _log.info("job %d %s%s", self.job_id, state, f": {error}" if error else "")

    async def _run_all(
        self, descriptor: JobDescriptor, tree: job_store.JobTree | None
    ) -> tuple[bool, str | None, list[Outcome]]:
        ok, error = True, None
        runs = tree.runs if tree is not None else []
        for run in runs:
            if RunState(run.state).finished and run.state != RunState.PASSED:
                ok = False
                error = error or f"run {run.number} failed"
        unfinished = [r.number for r in runs if not RunState(r.state).finished]
        number = unfinished[0] if unfinished else len(runs) + 1
        outcomes: list[Outcome] = []
        while descriptor.runs == 0 or number <= descriptor.runs:
            resuming = number in unfinished
            if number > 1 and not resuming:
                await self._pause(descriptor.run_interval)
            tests = (
                {t.test_index: t for t in tree.tests if t.run == number}
                if tree is not None and resuming
                else {}
            )
            if not resuming:
                self._begin_run(number, new_job=tree is None and number == 1)
            run_ok, run_error, run_outcomes = await self._run_once(descriptor, number, tests)
            outcomes.extend(run_outcomes)
            if not run_ok:
                ok = False
                error = error or run_error
            number += 1
        return ok, error, outcomes

    def _begin_run(self, number: int, *, new_job: bool) -> None:
        now = utcnow()

        def begin(conn: Connection) -> list[dict[str, Any]]:
            rows = []
            if new_job:
                job_store.update_job(conn, self.job_id, state=JobState.RUNNING, started_at=now)
                rows.append(self._event("job_started", now, server_id=self.hub.server_id))
            job_store.insert_run(conn, self.job_id, number, state=RunState.RUNNING, started_at=now)
            rows.append(self._event("run_started", now, run=number))
            return rows

        self._defer(begin)

    async def _run_once(
        self, descriptor: JobDescriptor, number: int, tests: dict[int, Any]
    ) -> tuple[bool, str | None, list[Outcome]]:
        outcomes: list[Outcome] = []
        failures: list[str] = []
        try:
            for index, test in enumerate(descriptor.tests):
                result = await self._run_test(number, index, test, tests.get(index))
                outcomes.extend(result.outcomes)
                if result.state != RunState.PASSED:
                    failures.append(
                        f"test {test.name!r} {result.state}"
                        + (f": {result.error}" if result.error else "")
                    )
        except Stopped:
            self._end_run(number, RunState.CANCELLED, [])
            raise
        results = [report(r.name, r.params, outcomes) for r in descriptor.reporting.run_reporters]
        if results:
            passed = all(r.success for r in results)
            if not passed:
                failures = [r.message for r in results if not r.success] + failures
        else:
            passed = not failures
        self._end_run(number, RunState.PASSED if passed else RunState.FAILED, results)
        return passed, None if passed else f"run {number}: " + "; ".join(failures), outcomes

    def _end_run(self, number: int, state: RunState, results: Sequence[ReporterResult]) -> None:
        now = utcnow()

        def end(conn: Connection) -> list[dict[str, Any]]:
            job_store.update_run(
                conn,
                self.job_id,
                number,
                state=state,
                ended_at=now,
                reporters=[r.model_dump(mode="json") for r in results],
            )
            rows = [
                self._event("reporter_result", now, run=number, **r.model_dump(mode="json"))
                for r in results
            ]
            rows.append(self._event("run_finished", now, run=number, state=state))
            return rows

        self._defer(end)

    async def _final_reporters(
        self, descriptor: JobDescriptor, outcomes: list[Outcome], *, resumed: bool
    ) -> list[ReporterResult]:
        specs = descriptor.reporting.final_reporters
        if not specs:
            return []
        if resumed:  # runs finished by an earlier runner are only in the store
            await self._write()
            tree = await self.hub.store.read(job_store.load_job_tree, self.job_id)
            assert tree is not None
            outcomes = _final_outcomes(descriptor, tree.tests, tree.tasks)
        return [report(spec.name, spec.params, outcomes) for spec in specs]

    # ---- one test -----------------------------------------------------------------------------

    async def _run_test(self, run: int, index: int, test: TestDescriptor, row: Any) -> TestResult:
        if row is not None and RunState(row.state).finished:
            ended = await self.hub.store.read(
                job_store.tasks_of_test, self.job_id, run, index, row.attempts
            )
            return TestResult(RunState(row.state), row.error, _outcomes(test, ended))
        attempt = row.attempts if row is not None else 0
        tasks: Sequence[Any] = []
        if row is None:
            self._begin_test(run, index, test)
        elif attempt > 0:
            tasks = await self.hub.store.read(
                job_store.tasks_of_test, self.job_id, run, index, attempt
            )
            tasks = await self._wait_tasks([t.id for t in tasks])
        avoid: set[str] = set()
        error: str | None = None
        try:
            while True:
                if tasks:
                    if self._passed(tasks) or attempt > test.retry.count:
                        break
                    avoid |= {t.device_id for t in tasks if t.state != RunState.PASSED}
                    self._release(tasks)
                    await self._write()
                    await self._pause(test.retry.interval)
                attempt += 1
                devices = await self._acquire(test.devices, avoid)
                if devices is None:
                    tasks = []
                    error = _no_devices_message(test.devices)
                    break
                ids = await self._create_tasks(run, index, attempt, test, devices)
                tasks = await self._wait_tasks(ids, seen=self.seen)
        except Stopped:
            self._end_test(run, index, test, RunState.CANCELLED, "stopped on request", tasks)
            raise
        state = RunState.PASSED if tasks and self._passed(tasks) else RunState.FAILED
        if state == RunState.FAILED and error is None:
            error = _task_failures(tasks)
        self._end_test(run, index, test, state, error, tasks)
        return TestResult(state, error, _outcomes(test, tasks))

    def _passed(self, tasks: Sequence[Any]) -> bool:
        """A test passes per the run's target_success reporter, or when every task passed."""
        assert self.descriptor is not None
        passed = sum(1 for t in tasks if t.state == RunState.PASSED)
        for spec in self.descriptor.reporting.run_reporters:
            if spec.name == "target_success":
                return target_success_passes(spec.params, passed, len(tasks))
        return passed == len(tasks)

    def _begin_test(self, run: int, index: int, test: TestDescriptor) -> None:
        now = utcnow()

        def begin(conn: Connection) -> list[dict[str, Any]]:
            job_store.insert_test(
                conn,
                self.job_id,
                run,
                index,
                name=test.name,
                state=RunState.RUNNING,
                attempts=0,
                started_at=now,
            )
            return [self._event("test_started", now, run=run, test=index, name=test.name)]

        self._defer(begin)

    def _release(self, tasks: Sequence[Any]) -> None:
        device_ids = [t.device_id for t in tasks]

        def release(conn: Connection) -> list[dict[str, Any]]:
            inventory.release_devices(conn, device_ids, self.job_id)
            return []

        if device_ids:
            self._defer(release)
            self._releasing = True
            self._holding.difference_update(device_ids)

    def _end_test(
        self,
        run: int,
        index: int,
        test: TestDescriptor,
        state: RunState,
        error: str | None,
        tasks: Sequence[Any],
    ) -> None:
        """Record the test's end and give back the devices of its last attempt."""
        now = utcnow()
        self._release(tasks)

        def end(conn: Connection) -> list[dict[str, Any]]:
            job_store.update_test(
                conn, self.job_id, run, index, state=state, ended_at=now, error=error
            )
            return [
                self._event(
                    "test_finished",
                    now,
                    run=run,
                    test=index,
                    name=test.name,
                    state=state,
                    error=error,
                )
            ]

        self._defer(end)

    async def _acquire(self, want: DeviceRequest, avoid: set[str]) -> list[Device] | None:
        await self._write()  # devices given back must be free before we ask for more
        acquire = asyncio.ensure_future(self.hub.allocator.acquire(self.job_id, want, avoid))
        stop = asyncio.ensure_future(self.stop_requested.wait())
        try:
            done, _ = await asyncio.wait(
                {acquire, stop}, timeout=want.timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            stop.cancel()
            if not acquire.done():
                acquire.cancel()
                await asyncio.gather(acquire, return_exceptions=True)
        if acquire in done:
            devices = acquire.result()
            self._holding.update(d.id for d in devices)
            return devices
        if self.stop_requested.is_set():
            raise Stopped
        return None

    async def _create_tasks(
        self, run: int, index: int, attempt: int, test: TestDescriptor, devices: Sequence[Device]
    ) -> list[int]:
        now = utcnow()
        new = [
            job_store.NewTask(
                device_id=d.id,
                device_name=d.name,
                agent_id=d.agent_id,
                steps=[(s.name, s.plugin) for s in test.steps],
            )
            for d in devices
        ]
        ids: list[int] = []
        connected_here = self.hub.agents.connections
        remote = (
            {d.agent_id for d in devices if d.agent_id not in connected_here}
            if self.hub.relay.enabled
            else set()
        )

        def create(conn: Connection) -> list[dict[str, Any]]:
            ids[:] = job_store.create_tasks(conn, self.job_id, run, index, attempt, new)
            job_store.update_test(conn, self.job_id, run, index, attempts=attempt)
            rows = [
                self._event(
                    "devices_acquired",
                    now,
                    run=run,
                    test=index,
                    attempt=attempt,
                    devices=[d.id for d in devices],
                )
            ]
            for task_id, device in zip(ids, devices, strict=True):
                if device.agent_id in remote:  # told with the commit: never lost in between
                    notify(conn, "task", task_id)
            rows += [
                event_row(
                    "task_created",
                    now,
                    job_id=self.job_id,
                    task_id=task_id,
                    data={
                        "run": run,
                        "test": index,
                        "attempt": attempt,
                        "device_id": device.id,
                        "agent": device.agent_name,
                    },
                )
                for task_id, device in zip(ids, devices, strict=True)
            ]
            return rows

        await self._write(create)
        self.seen = self.hub.signals.job_version(self.job_id)
        if remote:
            told = sum(1 for d in devices if d.agent_id in remote)
            self.hub.metrics.relay_messages.labels("sent", "task").inc(told)
        for task_id, device in zip(ids, devices, strict=True):
            self.hub.task_index.remember(task_id, self.job_id)
            if device.agent_id not in remote:
                await self.hub.relay.deliver(
                    device.agent_id,
                    self.hub.jobs.run_task_message(task_id, self.job_id, device.name, test),
                )
        return ids

    async def _wait_tasks(self, ids: Sequence[int], seen: int | None = None) -> Sequence[Any]:
        """Wait until every task is finished; on a stop request, stop them first.

        `seen` is the job's version when the tasks were created: nothing to read before the
        job changes again. Without it (a job taken over), tasks still pending are sent again
        at once; either way, every `_RESEND` seconds while they stay pending.
        """
        loop = asyncio.get_running_loop()
        resend_at = loop.time() + (_RESEND if seen is not None else 0.0)
        if seen is not None:
            await self.hub.signals.wait_job(self.job_id, seen, _RECHECK)
        while True:
            seen = self.hub.signals.job_version(self.job_id)
            tasks = await self.hub.store.read(job_store.get_tasks, ids)
            if all(RunState(t.state).finished for t in tasks):
                return tasks
            if self.stop_requested.is_set():
                await self._stop_tasks([t for t in tasks if not RunState(t.state).finished])
                return await self.hub.store.read(job_store.get_tasks, ids)
            if loop.time() >= resend_at:
                for task in tasks:
                    if task.state == RunState.PENDING:
                        await self.hub.relay.resend(task.id, task.agent_id)
                resend_at = loop.time() + _RESEND
            await self.hub.signals.wait_job(self.job_id, seen, _RECHECK)

    async def _stop_tasks(self, tasks: Sequence[Any]) -> None:
        """Ask agents to stop the tasks; those not ended within the grace end cancelled."""
        for task in tasks:
            await self.hub.relay.deliver(
                task.agent_id, StopTask(task_id=task.id, reason="job stopped")
            )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.hub.config.stop_grace
        ids = [t.id for t in tasks]
        while loop.time() < deadline:
            seen = self.hub.signals.job_version(self.job_id)
            rows = await self.hub.store.read(job_store.get_tasks, ids)
            if all(RunState(row.state).finished for row in rows):
                raise Stopped
            await self.hub.signals.wait_job(self.job_id, seen, 0.2)
        reason = f"not stopped by its agent within {format_duration(self.hub.config.stop_grace)}"
        now = utcnow()
        ended = [(task_id, self.job_id) for task_id in ids]

        def cancel(conn: Connection) -> list[dict[str, Any]]:
            end_tasks(conn, ended, RunState.CANCELLED, reason, now)
            return []  # end_tasks added the events

        await self._write(cancel)
        raise Stopped

    async def _pause(self, seconds: float) -> None:
        """Sleep, unless a stop request comes first."""
        if seconds <= 0:
            return
        await self._write()
        try:
            async with asyncio.timeout(seconds):
                await self.stop_requested.wait()
        except TimeoutError:
            return
        raise Stopped


def _resume(conn: Connection, job_id: int) -> job_store.JobTree | None:
    """Load a job left by another runner, and give back devices it holds for no task."""
    inventory.release_idle_job_devices(conn, job_id)
    return job_store.load_job_tree(conn, job_id)


def _outcomes(test: TestDescriptor, tasks: Sequence[Any]) -> list[Outcome]:
    return [Outcome(test=test.name, device_id=t.device_id, state=RunState(t.state)) for t in tasks]


def _final_outcomes(
    descriptor: JobDescriptor, tests: Sequence[Any], tasks: Sequence[Any]
) -> list[Outcome]:
    """The tasks of each test's last attempt, over every run."""
    last = {(t.run, t.test_index): t.attempts for t in tests}
    return [
        Outcome(
            test=descriptor.tests[t.test_index].name, device_id=t.device_id, state=RunState(t.state)
        )
        for t in tasks
        if last.get((t.run, t.test_index)) == t.attempt
    ]


def _no_devices_message(want: DeviceRequest) -> str:
    parts = [f"{want.count} device(s)"]
    if want.kind:
        parts.append(f"kind {want.kind!r}")
    if want.capabilities:
        parts.append(f"capabilities {want.capabilities}")
    if want.labels:
        parts.append(f"labels {want.labels}")
    if want.names:
        parts.append(f"named {want.names}")
    return f"no free devices matched within {format_duration(want.timeout)}: wanted " + ", ".join(
        parts
    )


def _task_failures(tasks: Sequence[Any]) -> str:
    bad = [t for t in tasks if t.state != RunState.PASSED]
    passed = len(tasks) - len(bad)
    detail = "; ".join(
        f"{t.device_id} {t.state}" + (f" ({t.error})" if t.error else "") for t in bad[:5]
    )
    return f"{passed}/{len(tasks)} tasks passed: {detail}"
