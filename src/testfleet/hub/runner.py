"""Run one job: its runs one after another, each test's tasks in parallel on its devices.

Every decision is read back from the store, so a runner started on a job that another (dead)
runner left half-done carries on where that one stopped.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from testfleet.hub.allocator import Device
from testfleet.hub.reporters import Outcome, report, target_success_passes
from testfleet.protocol.api import ReporterResult
from testfleet.protocol.descriptor import DeviceRequest, JobDescriptor, TestDescriptor
from testfleet.protocol.durations import format_duration
from testfleet.protocol.states import JobState, RunState
from testfleet.protocol.wire import StopTask, utcnow
from testfleet.store import inventory
from testfleet.store import jobs as job_store
from testfleet.store.events import add_event

if TYPE_CHECKING:
    from testfleet.hub.runtime import Hub

_log = logging.getLogger(__name__)
_RECHECK = 1.0


class Stopped(Exception):
    """The job was asked to stop."""


class JobRunner:
    """Drives one job to its end."""

    def __init__(self, hub: Hub, job_id: int) -> None:
        self.hub = hub
        self.job_id = job_id
        self.stop_requested = asyncio.Event()
        self.descriptor: JobDescriptor | None = None

    def request_stop(self) -> None:
        """Ask the runner to stop at its next wait."""
        self.stop_requested.set()
        self.hub.signals.job_changed(self.job_id)

    async def run(self) -> None:
        """Run the job to a final state."""
        async with self.hub.store.read() as conn:
            job = await job_store.get_job(conn, self.job_id)
        if job is None or JobState(job.state).finished:
            return
        self.descriptor = descriptor = JobDescriptor.model_validate(job.descriptor)
        if job.stop_requested:
            self.stop_requested.set()
        if job.state == JobState.QUEUED:
            await self._start()
        try:
            if self.stop_requested.is_set():
                raise Stopped
            ok, error = await self._run_all(descriptor)
            results = await self._final_reporters(descriptor)
            if not all(r.success for r in results):
                ok = False
                error = error or "; ".join(r.message for r in results if not r.success)
            await self._finish(JobState.COMPLETED if ok else JobState.FAILED, error, results)
        except Stopped:
            await self._finish(JobState.CANCELLED, "stopped on request", [])

    # ---- the job ----------------------------------------------------------------------------

    async def _start(self) -> None:
        now = utcnow()
        async with self.hub.store.write() as conn:
            await job_store.update_job(conn, self.job_id, state=JobState.RUNNING, started_at=now)
            await add_event(
                conn, "job_started", now, job_id=self.job_id, data={"server_id": self.hub.server_id}
            )
        self.hub.signals.job_changed(self.job_id)

    async def _finish(
        self, state: JobState, error: str | None, results: Sequence[ReporterResult]
    ) -> None:
        now = utcnow()
        async with self.hub.store.write() as conn:
            await inventory.release_job_devices(conn, self.job_id)
            await job_store.update_job(
                conn,
                self.job_id,
                state=state,
                ended_at=now,
                error=error,
                final_reporters=[r.model_dump(mode="json") for r in results],
            )
            await add_event(
                conn, "job_finished", now, job_id=self.job_id, data={"state": state, "error": error}
            )
        self.hub.metrics.jobs_finished.labels(state=str(state)).inc()
        self.hub.signals.job_changed(self.job_id)
        self.hub.signals.devices_changed()
        _log.info("job %d %s%s", self.job_id, state, f": {error}" if error else "")

    async def _run_all(self, descriptor: JobDescriptor) -> tuple[bool, str | None]:
        async with self.hub.store.read() as conn:
            tree = await job_store.load_job_tree(conn, self.job_id)
        assert tree is not None
        ok, error = True, None
        for run in tree.runs:
            if RunState(run.state).finished and run.state != RunState.PASSED:
                ok = False
                error = error or f"run {run.number} failed"
        unfinished = [r.number for r in tree.runs if not RunState(r.state).finished]
        number = unfinished[0] if unfinished else len(tree.runs) + 1
        while descriptor.runs == 0 or number <= descriptor.runs:
            if number > 1 and number not in unfinished:
                await self._pause(descriptor.run_interval)
            run_ok, run_error = await self._run_once(
                descriptor, number, resuming=number in unfinished
            )
            if not run_ok:
                ok = False
                error = error or run_error
            number += 1
        return ok, error

    async def _run_once(
        self, descriptor: JobDescriptor, number: int, resuming: bool
    ) -> tuple[bool, str | None]:
        if not resuming:
            now = utcnow()
            async with self.hub.store.write() as conn:
                await job_store.upsert_run(
                    conn, self.job_id, number, state=RunState.RUNNING, started_at=now
                )
                await add_event(conn, "run_started", now, job_id=self.job_id, data={"run": number})
        async with self.hub.store.read() as conn:
            tree = await job_store.load_job_tree(conn, self.job_id)
        assert tree is not None
        rows = {t.test_index: t for t in tree.tests if t.run == number}
        outcomes: list[Outcome] = []
        failures: list[str] = []
        try:
            for index, test in enumerate(descriptor.tests):
                state, error, test_outcomes = await self._run_test(
                    number, index, test, rows.get(index)
                )
                outcomes.extend(test_outcomes)
                if state != RunState.PASSED:
                    failures.append(f"test {test.name!r} {state}" + (f": {error}" if error else ""))
        except Stopped:
            await self._end_run(number, RunState.CANCELLED, [])
            raise
        results = [report(r.name, r.params, outcomes) for r in descriptor.reporting.run_reporters]
        if results:
            passed = all(r.success for r in results)
            if not passed:
                failures = [r.message for r in results if not r.success] + failures
        else:
            passed = not failures
        await self._end_run(number, RunState.PASSED if passed else RunState.FAILED, results)
        return passed, None if passed else f"run {number}: " + "; ".join(failures)

    async def _end_run(
        self, number: int, state: RunState, results: Sequence[ReporterResult]
    ) -> None:
        now = utcnow()
        async with self.hub.store.write() as conn:
            await job_store.upsert_run(
                conn,
                self.job_id,
                number,
                state=state,
                ended_at=now,
                reporters=[r.model_dump(mode="json") for r in results],
            )
            for result in results:
                await add_event(
                    conn,
                    "reporter_result",
                    now,
                    job_id=self.job_id,
                    data={"run": number, **result.model_dump(mode="json")},
                )
            await add_event(
                conn, "run_finished", now, job_id=self.job_id, data={"run": number, "state": state}
            )
        self.hub.signals.job_changed(self.job_id)

    async def _final_reporters(self, descriptor: JobDescriptor) -> list[ReporterResult]:
        specs = descriptor.reporting.final_reporters
        if not specs:
            return []
        async with self.hub.store.read() as conn:
            tree = await job_store.load_job_tree(conn, self.job_id)
        assert tree is not None
        outcomes = _final_outcomes(descriptor, tree.tests, tree.tasks)
        return [report(spec.name, spec.params, outcomes) for spec in specs]

    # ---- one test -----------------------------------------------------------------------------

    async def _run_test(
        self, run: int, index: int, test: TestDescriptor, row: Any
    ) -> tuple[RunState, str | None, list[Outcome]]:
        if row is not None and RunState(row.state).finished:
            async with self.hub.store.read() as conn:
                ended = await job_store.tasks_of_test(conn, self.job_id, run, index, row.attempts)
            return RunState(row.state), row.error, _outcomes(test, ended)
        attempt = row.attempts if row is not None else 0
        if row is None:
            now = utcnow()
            async with self.hub.store.write() as conn:
                await job_store.upsert_test(
                    conn,
                    self.job_id,
                    run,
                    index,
                    name=test.name,
                    state=RunState.RUNNING,
                    attempts=0,
                    started_at=now,
                )
                await add_event(
                    conn,
                    "test_started",
                    now,
                    job_id=self.job_id,
                    data={"run": run, "test": index, "name": test.name},
                )
        tasks: Sequence[Any] = []
        if attempt > 0:
            async with self.hub.store.read() as conn:
                tasks = await job_store.tasks_of_test(conn, self.job_id, run, index, attempt)
            tasks = await self._wait_tasks([t.id for t in tasks])
        avoid: set[str] = set()
        error: str | None = None
        try:
            while True:
                if tasks:
                    if self._passed(tasks) or attempt > test.retry.count:
                        break
                    avoid |= {t.device_id for t in tasks if t.state != RunState.PASSED}
                    await self.hub.allocator.release(self.job_id, [t.device_id for t in tasks])
                    await self._pause(test.retry.interval)
                attempt += 1
                devices = await self._acquire(test.devices, avoid)
                if devices is None:
                    tasks = []
                    error = _no_devices_message(test.devices)
                    break
                ids = await self._create_tasks(run, index, attempt, test, devices)
                tasks = await self._wait_tasks(ids)
        except Stopped:
            if tasks:
                await self.hub.allocator.release(self.job_id, [t.device_id for t in tasks])
            await self._end_test(run, index, test, RunState.CANCELLED, "stopped on request")
            raise
        if tasks:
            await self.hub.allocator.release(self.job_id, [t.device_id for t in tasks])
        state = RunState.PASSED if tasks and self._passed(tasks) else RunState.FAILED
        if state == RunState.FAILED and error is None:
            error = _task_failures(tasks)
        await self._end_test(run, index, test, state, error)
        return state, error, _outcomes(test, tasks)

    def _passed(self, tasks: Sequence[Any]) -> bool:
        """A test passes per the run's target_success reporter, or when every task passed."""
        assert self.descriptor is not None
        passed = sum(1 for t in tasks if t.state == RunState.PASSED)
        for spec in self.descriptor.reporting.run_reporters:
            if spec.name == "target_success":
                return target_success_passes(spec.params, passed, len(tasks))
        return passed == len(tasks)

    async def _end_test(
        self, run: int, index: int, test: TestDescriptor, state: RunState, error: str | None
    ) -> None:
        now = utcnow()
        async with self.hub.store.write() as conn:
            await job_store.upsert_test(
                conn, self.job_id, run, index, state=state, ended_at=now, error=error
            )
            await add_event(
                conn,
                "test_finished",
                now,
                job_id=self.job_id,
                data={"run": run, "test": index, "name": test.name, "state": state, "error": error},
            )
        self.hub.signals.job_changed(self.job_id)

    async def _acquire(self, want: DeviceRequest, avoid: set[str]) -> list[Device] | None:
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
            return acquire.result()
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
        async with self.hub.store.write() as conn:
            ids = await job_store.create_tasks(conn, self.job_id, run, index, attempt, new)
            await job_store.upsert_test(conn, self.job_id, run, index, attempts=attempt)
            await add_event(
                conn,
                "devices_acquired",
                now,
                job_id=self.job_id,
                data={
                    "run": run,
                    "test": index,
                    "attempt": attempt,
                    "devices": [d.id for d in devices],
                },
            )
            for task_id, device in zip(ids, devices, strict=True):
                await add_event(
                    conn,
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
        for task_id in ids:
            self.hub.task_index.remember(task_id, self.job_id)
        for task_id, device in zip(ids, devices, strict=True):
            self.hub.agents.send(
                device.agent_id,
                self.hub.jobs.run_task_message(task_id, self.job_id, device.name, test),
            )
        self.hub.signals.job_changed(self.job_id)
        return ids

    async def _wait_tasks(self, ids: Sequence[int]) -> Sequence[Any]:
        """Wait until every task is finished; on a stop request, stop them first."""
        while True:
            async with self.hub.store.read() as conn:
                rows = [await job_store.get_task(conn, task_id) for task_id in ids]
            tasks = [row for row in rows if row is not None]
            if all(RunState(t.state).finished for t in tasks):
                return tasks
            if self.stop_requested.is_set():
                await self._stop_tasks([t for t in tasks if not RunState(t.state).finished])
                raise Stopped
            await self.hub.signals.wait_job(self.job_id, _RECHECK)

    async def _stop_tasks(self, tasks: Sequence[Any]) -> None:
        """Ask agents to stop the tasks; those not ended within the grace end cancelled."""
        for task in tasks:
            self.hub.agents.send(task.agent_id, StopTask(task_id=task.id, reason="job stopped"))
        deadline = asyncio.get_running_loop().time() + self.hub.config.stop_grace
        ids = [t.id for t in tasks]
        while asyncio.get_running_loop().time() < deadline:
            async with self.hub.store.read() as conn:
                rows = [await job_store.get_task(conn, task_id) for task_id in ids]
            if all(row is None or RunState(row.state).finished for row in rows):
                return
            await self.hub.signals.wait_job(self.job_id, 0.2)
        now = utcnow()
        reason = f"not stopped by its agent within {format_duration(self.hub.config.stop_grace)}"
        async with self.hub.store.write() as conn:
            for task_id in ids:
                if await job_store.set_task_state(
                    conn, task_id, RunState.CANCELLED, at=now, error=reason
                ):
                    await add_event(
                        conn,
                        "task_finished",
                        now,
                        job_id=self.job_id,
                        task_id=task_id,
                        data={"state": RunState.CANCELLED, "error": reason, "source": "hub"},
                    )

    async def _pause(self, seconds: float) -> None:
        """Sleep, unless a stop request comes first."""
        if seconds <= 0:
            return
        try:
            async with asyncio.timeout(seconds):
                await self.stop_requested.wait()
        except TimeoutError:
            return
        raise Stopped


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
