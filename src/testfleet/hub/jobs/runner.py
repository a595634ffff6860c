"""Run one job: its runs one after another, each run's tests one after another.

Every decision is read back from the store, so a runner started on a job that another (dead)
runner left half-done carries on where that one stopped.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import partial

from testfleet.hub.jobs import progress
from testfleet.hub.jobs.context import JobContext, RunnerDeps, Stopped
from testfleet.hub.jobs.test_runner import TestRunner
from testfleet.hub.plans import JobPlan
from testfleet.hub.reporters import Outcome, report
from testfleet.protocol.api import ReporterResult
from testfleet.protocol.states import JobState, RunState
from testfleet.protocol.wire import utcnow
from testfleet.store import job_progress
from testfleet.store import jobs as job_store
from testfleet.store.job_tree import JobTree, load_job_tree
from testfleet.store.records import TestRecord

_log = logging.getLogger(__name__)


class JobRunner:
    """Drives one job to its end. `claim` is how this hub took the job (None: resumed)."""

    def __init__(self, deps: RunnerDeps, job_id: int, claim: job_store.Claim | None = None) -> None:
        self.job = JobContext(job_id, deps)
        self.claim = claim

    @property
    def job_id(self) -> int:
        """The job's id."""
        return self.job.job_id

    def request_stop(self) -> None:
        """Ask the runner to stop the job at its next wait."""
        self.job.request_stop()

    async def run(self) -> None:
        """Run the job to a final state."""
        deps = self.job.deps
        claim = self.claim
        tree: JobTree | None = None
        if claim is not None and claim.fresh and claim.descriptor is not None:
            descriptor, stop_requested = claim.descriptor, claim.stop_requested
        else:  # another runner may have left it half done
            resumed = await deps.store.write(job_progress.resume_job, self.job_id)
            deps.signals.devices_released(resumed.released)
            tree = resumed.tree
            if tree is None or tree.job.state.finished:
                return
            descriptor, stop_requested = tree.job.descriptor, tree.job.stop_requested
            if tree.job.state == JobState.QUEUED:
                tree = None  # it never started: a fresh start
        plan = deps.plans.get(self.job_id, descriptor)
        if stop_requested:
            self.job.stop_requested.set()
        try:
            if self.job.stop_requested.is_set():
                raise Stopped
            ok, error, outcomes = await self._run_all(plan, tree)
            results = await self._final_reporters(plan, outcomes, resumed=tree is not None)
            if not all(r.success for r in results):
                ok = False
                error = error or "; ".join(r.message for r in results if not r.success)
            await self._finish(JobState.COMPLETED if ok else JobState.FAILED, error, results)
        except Stopped:
            await self._finish(JobState.CANCELLED, "stopped on request", [])

    async def _finish(
        self, state: JobState, error: str | None, results: Sequence[ReporterResult]
    ) -> None:
        deps = self.job.deps
        release_all = bool(self.job.holding) or not (self.claim and self.claim.fresh)
        await self.job.writes.commit(
            partial(
                job_progress.finish_job,
                job_id=self.job_id,
                state=state,
                error=error,
                final_reporters=results,
                now=utcnow(),
                release_all=release_all,
            )
        )
        deps.metrics.jobs_finished.labels(state=str(state)).inc()
        deps.signals.forget_job(self.job_id)
        if release_all:
            deps.signals.job_released(self.job_id)
        deps.plans.forget(self.job_id)
        _log.info("job %d %s%s", self.job_id, state, f": {error}" if error else "")

    async def _run_all(
        self, plan: JobPlan, tree: JobTree | None
    ) -> tuple[bool, str | None, list[Outcome]]:
        descriptor = plan.descriptor
        ok, error = True, None
        runs = tree.runs if tree is not None else []
        for run in runs:
            if run.state.finished and run.state != RunState.PASSED:
                ok = False
                error = error or f"run {run.number} failed"
        unfinished = [r.number for r in runs if not r.state.finished]
        number = unfinished[0] if unfinished else len(runs) + 1
        outcomes: list[Outcome] = []
        while descriptor.runs == 0 or number <= descriptor.runs:
            resuming = number in unfinished
            if number > 1 and not resuming:
                await self.job.pause(descriptor.run_interval)
            tests = (
                {t.test_index: t for t in tree.tests if t.run == number}
                if tree is not None and resuming
                else {}
            )
            if not resuming:
                first = tree is None and number == 1
                self.job.writes.defer(
                    partial(
                        job_progress.start_run,
                        job_id=self.job_id,
                        number=number,
                        now=utcnow(),
                        first_of=self.job.deps.server_id if first else None,
                    )
                )
            run_ok, run_error, run_outcomes = await self._run_once(plan, number, tests)
            outcomes.extend(run_outcomes)
            if not run_ok:
                ok = False
                error = error or run_error
            number += 1
        return ok, error, outcomes

    async def _run_once(
        self, plan: JobPlan, number: int, tests: dict[int, TestRecord]
    ) -> tuple[bool, str | None, list[Outcome]]:
        descriptor = plan.descriptor
        outcomes: list[Outcome] = []
        failures: list[str] = []
        try:
            for index, test in enumerate(descriptor.tests):
                result = await TestRunner(self.job, plan, number, index).run(tests.get(index))
                outcomes.extend(result.outcomes)
                if result.state != RunState.PASSED:
                    failures.append(
                        progress.describe_test_failure(test.name, result.state, result.error)
                    )
        except Stopped:
            self._defer_end_run(number, RunState.CANCELLED, [])
            raise
        results = [report(r.name, r.params, outcomes) for r in descriptor.reporting.run_reporters]
        if results:
            passed = all(r.success for r in results)
            if not passed:
                failures = [r.message for r in results if not r.success] + failures
        else:
            passed = not failures
        self._defer_end_run(number, RunState.PASSED if passed else RunState.FAILED, results)
        return passed, None if passed else f"run {number}: " + "; ".join(failures), outcomes

    def _defer_end_run(
        self, number: int, state: RunState, results: Sequence[ReporterResult]
    ) -> None:
        self.job.writes.defer(
            partial(
                job_progress.end_run,
                job_id=self.job_id,
                number=number,
                state=state,
                results=results,
                now=utcnow(),
            )
        )

    async def _final_reporters(
        self, plan: JobPlan, outcomes: list[Outcome], *, resumed: bool
    ) -> list[ReporterResult]:
        specs = plan.descriptor.reporting.final_reporters
        if not specs:
            return []
        if resumed:  # runs finished by an earlier runner are only in the store
            await self.job.writes.commit()
            tree = await self.job.deps.store.read(load_job_tree, self.job_id)
            assert tree is not None
            outcomes = progress.final_outcomes(plan.descriptor, tree.tests, tree.tasks)
        return [report(spec.name, spec.params, outcomes) for spec in specs]
