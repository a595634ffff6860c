"""Build and run tasks. A run is a testfleet job: one task per chosen agent, whose `plan` step
runs that agent's share of the instances at once, so a run shows in job lists and events.

A run task is scheduled when accepted, processing once its build is found (or made) and its
instances placed, and complete (or canceled) when its job has ended: then every instance that
never reported an outcome fails, with the reason (its agent was lost, the run timed out), and
the outcomes are counted per instance identity. A run that cannot be placed completes at once
as a failure that says why. Any hub finishes runs whose job ended while their hub was away.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from datetime import datetime

from sqlalchemy import Connection

from testfleet.hub.jobs.service import JobService
from testfleet.hub.signals import Signals
from testfleet.hub.sync.service import SyncService
from testfleet.hub.testplans import builder
from testfleet.hub.testplans.catalog import CheckedArchive, PlanCatalog
from testfleet.hub.testplans.compose import ResolvedRun
from testfleet.hub.testplans.jobspec import run_descriptor
from testfleet.hub.testplans.outcomes import finalize
from testfleet.hub.testplans.placement import PlacementError, place
from testfleet.protocol.manifest import Manifest
from testfleet.protocol.plan_api import TaskState
from testfleet.protocol.wire import utcnow
from testfleet.store import jobs as job_store
from testfleet.store import plan_catalog, plan_runs, plan_tasks
from testfleet.store.db import Store
from testfleet.store.plan_records import PlanTaskRecord

_log = logging.getLogger(__name__)
SWEEP = 2.0
JOB_RECHECK = 1.0


def new_task_id() -> str:
    """A task id: sortable by time, unique enough (Testground's are 20 characters too)."""
    return f"{int(time.time() * 1000):011x}{secrets.token_hex(5)}"[:20]


class PlanRuns:
    """Starts builds and runs, drives runs to their end and counts their outcomes."""

    def __init__(
        self,
        *,
        server_id: str,
        store: Store,
        catalog: PlanCatalog,
        jobs: JobService,
        signals: Signals,
        sync: SyncService,
        local_agent: str | None,
    ) -> None:
        self._server_id = server_id
        self._store = store
        self._catalog = catalog
        self._jobs = jobs
        self._signals = signals
        self._sync = sync
        self.local_agent = local_agent
        self._drivers: dict[str, asyncio.Task[None]] = {}

    # ---- builds ------------------------------------------------------------------------------

    async def build(
        self,
        run: ResolvedRun,
        manifest: Manifest,
        source: CheckedArchive,
        sdk: CheckedArchive | None,
        requestor: str,
    ) -> str:
        """Check and keep a plan's source (and linked SDK); the build task completes at once."""
        config = builder.settings(manifest, run.build_config)
        requirements = builder.check_source(source.data, config)
        await self._catalog.keep(source, requestor)
        if sdk is not None:
            await self._catalog.keep(sdk, requestor)
        artifact = builder.artifact_key(source.hash, sdk.hash if sdk else None, config)
        task_id = new_task_id()

        def work(conn: Connection) -> None:
            now = utcnow()
            cached = plan_catalog.get_build(conn, artifact) is not None
            plan_catalog.put_build(
                conn,
                artifact=artifact,
                plan=run.plan,
                builder=run.builder,
                source_hash=source.hash,
                sdk_hash=sdk.hash if sdk else None,
                build_config=config,
                now=now,
            )
            self._create(conn, task_id, "build", run, requestor, now)
            plan_tasks.move_task(conn, task_id, TaskState.PROCESSING, now)
            result = {"artifact": artifact, "cached": cached, "source_hash": source.hash}
            wanted = ", ".join(requirements) or "none (the agent's interpreter)"
            plan_tasks.append_log(
                conn,
                task_id,
                f"plan {run.plan}: source {source.hash}, entry {config['entry']}, "
                f"requirements: {wanted}\nartifact {artifact}"
                + (" (built before)" if cached else "")
                + "\n",
            )
            plan_tasks.move_task(
                conn, task_id, TaskState.COMPLETE, now, result=result, artifact=artifact
            )

        await self._store.write(work)
        return task_id

    def _create(
        self,
        conn: Connection,
        task_id: str,
        kind: str,
        run: ResolvedRun,
        requestor: str,
        now: datetime,
    ) -> None:
        plan_tasks.create_task(
            conn,
            task_id=task_id,
            type=kind,
            plan=run.plan,
            case=run.case,
            runner=run.runner,
            builder=run.builder,
            composition=run.composition,
            requestor=requestor,
            server_id=self._server_id,
            now=now,
        )

    # ---- runs --------------------------------------------------------------------------------

    async def start(
        self,
        run: ResolvedRun,
        manifest: Manifest,
        sources: tuple[str, str | None],
        requestor: str,
    ) -> str:
        """Accept a checked run of the plan's source (and a linked SDK); it goes on in the
        background. Returns the run id."""
        task_id = new_task_id()
        await self._store.write(
            lambda conn: self._create(conn, task_id, "run", run, requestor, utcnow())
        )
        driver = asyncio.create_task(self._drive(task_id, run, manifest, sources, requestor))
        self._drivers[task_id] = driver
        driver.add_done_callback(lambda _t: self._drivers.pop(task_id, None))
        return task_id

    async def _drive(
        self,
        task_id: str,
        run: ResolvedRun,
        manifest: Manifest,
        sources: tuple[str, str | None],
        requestor: str,
    ) -> None:
        try:
            job_id = await self._launch(task_id, run, manifest, sources, requestor)
            if job_id is not None:
                await self._wait_for_job(job_id)
                task = await self._store.read(plan_tasks.get_task, task_id)
                if task is not None:
                    await self.finalize(task)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            _log.exception("run %s failed", task_id)
            await self._end_early(task_id, run, f"the hub could not run it: {error!r}")

    async def _launch(
        self,
        task_id: str,
        run: ResolvedRun,
        manifest: Manifest,
        sources: tuple[str, str | None],
        requestor: str,
    ) -> int | None:
        source_hash, sdk_hash = sources
        config = builder.settings(manifest, run.build_config)
        artifact = builder.artifact_key(source_hash, sdk_hash, config)
        if await self._store.read(plan_catalog.get_build, artifact) is None:
            source = await self._catalog.archive(source_hash)
            if source is None:
                await self._end_early(
                    task_id, run, f"the source {source_hash} of plan {run.plan!r} is gone"
                )
                return None
            builder.check_source(source, config)
            await self._store.write(
                plan_catalog.put_build,
                artifact=artifact,
                plan=run.plan,
                builder=run.builder,
                source_hash=source_hash,
                sdk_hash=sdk_hash,
                build_config=config,
                now=utcnow(),
            )
        slots = await self._store.read(plan_runs.online_host_slots)
        try:
            placement = place(run, slots, self.local_agent)
        except PlacementError as error:
            await self._end_early(task_id, run, str(error))
            return None
        descriptor = run_descriptor(task_id, run, config, sources, placement)

        def placed(conn: Connection) -> bool:
            moved = plan_tasks.move_task(
                conn, task_id, TaskState.PROCESSING, utcnow(), artifact=artifact
            )
            if moved:
                plan_runs.place_instances(conn, task_id, placement.instances)
            return moved

        if not await self._store.write(placed):
            return None  # terminated meanwhile
        job_id = await self._jobs.submit(descriptor, requestor)
        tracked = await self._store.write(
            plan_tasks.move_task, task_id, TaskState.PROCESSING, utcnow(), job_id=job_id
        )
        if not tracked:  # terminated while its job was being submitted
            await self._jobs.stop(job_id, requestor)
            return None
        return job_id

    async def _wait_for_job(self, job_id: int) -> None:
        while True:
            seen = self._signals.job_version(job_id)
            job = await self._store.read(job_store.get_job, job_id)
            if job is None or job.state.finished:
                return
            await self._signals.wait_job(job_id, seen, JOB_RECHECK)

    async def _end_early(self, task_id: str, run: ResolvedRun, error: str) -> None:
        result = {
            "outcome": "failure",
            "outcomes": {g.id: {"ok": 0, "total": g.count} for g in run.groups},
        }
        now = utcnow()

        def work(conn: Connection) -> None:
            plan_tasks.move_task(conn, task_id, TaskState.PROCESSING, now)
            plan_tasks.move_task(conn, task_id, TaskState.COMPLETE, now, result=result, error=error)

        await self._store.write(work)

    async def finalize(self, task: PlanTaskRecord) -> None:
        """End a run whose job has ended (see `outcomes.finalize`)."""
        await finalize(self._store, self._jobs, self._sync, task)

    # ---- terminate, upkeep -------------------------------------------------------------------

    async def terminate(self, runner: str, requestor: str) -> list[str]:
        """Stop every unfinished task of `runner`; returns their ids."""
        query = plan_tasks.TaskQuery(
            runner=runner, states=[TaskState.SCHEDULED, TaskState.PROCESSING], limit=1000
        )
        tasks = await self._store.read(plan_tasks.list_tasks, query)
        for task in tasks:
            if task.job_id is not None:
                try:
                    await self._jobs.stop(task.job_id, requestor)
                except Exception as error:  # finished meanwhile: the driver ends the task
                    _log.info("terminate %s: %s", task.id, error)
            else:
                now = utcnow()
                await self._store.write(
                    plan_tasks.move_task,
                    task.id,
                    TaskState.CANCELED,
                    now,
                    result={"outcome": "canceled", "outcomes": {}},
                    error="terminated",
                )
        return [task.id for task in tasks]

    async def sweep(self) -> int:
        """Finish runs whose job has ended but which no hub is driving; returns how many."""
        found = await self._store.read(plan_tasks.runs_to_finalize)
        finished = 0
        for task in found:
            if task.id not in self._drivers:
                await self.finalize(task)
                finished += 1
        return finished

    async def run(self) -> None:
        """Cancel what an earlier life of this hub left unstarted, then sweep until cancelled."""
        for task in await self._store.read(plan_tasks.orphaned_tasks, self._server_id):
            if task.id not in self._drivers:
                await self._store.write(
                    plan_tasks.move_task,
                    task.id,
                    TaskState.CANCELED,
                    utcnow(),
                    result={"outcome": "canceled", "outcomes": {}},
                    error="the hub restarted before the run started",
                )
        while True:
            try:
                await self.sweep()
            except Exception:
                _log.exception("plan runs: sweep failed")
            await asyncio.sleep(SWEEP)

    async def stop(self) -> None:
        """Stop driving runs (another hub, or this one restarted, finishes them)."""
        for driver in list(self._drivers.values()):
            driver.cancel()
        await asyncio.gather(*self._drivers.values(), return_exceptions=True)
