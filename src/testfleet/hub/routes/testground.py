"""Testground's daemon API: /build, /run, /outputs, /terminate, /healthcheck, /status, /tasks
and /logs, with the request shapes of Testground's client (see docs/plans.md)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request, Response
from fastapi.responses import PlainTextResponse, StreamingResponse

from testfleet.hub.errors import ApiError
from testfleet.hub.routes.deps import SELF_BOUNDED_BODY, HubDep, Operator, Reader
from testfleet.hub.runtime import Hub
from testfleet.hub.testplans import outputs
from testfleet.hub.testplans.catalog import check_archive
from testfleet.hub.testplans.compose import Problems, parse_composition, resolve
from testfleet.hub.testplans.health import healthcheck
from testfleet.hub.testplans.multipart import read_parts
from testfleet.hub.testplans.views import task_view
from testfleet.protocol.manifest import RUNNERS
from testfleet.protocol.plan_api import (
    HealthcheckRequest,
    HealthReport,
    LogsRequest,
    OutputsRequest,
    PlanTask,
    RunnerRequest,
    TaskCreated,
    TaskFilters,
    TaskIdRequest,
    TaskList,
    Terminated,
)
from testfleet.store import events as event_store
from testfleet.store import plan_catalog, plan_runs, plan_tasks
from testfleet.store.plan_records import PlanTaskRecord

router = APIRouter(tags=["test plans (Testground daemon)"])
FOLLOW_POLL = 0.5
MAX_BUILD_REQUEST = 80 * 1024 * 1024


def _runner(name: str) -> str:
    if name not in RUNNERS:
        problems = Problems()
        problems.add(("runner",), f"unknown runner {name!r}; this hub has: {', '.join(RUNNERS)}")
        problems.raise_if_any()
    return name


async def task_or_404(hub: Hub, task_id: str) -> PlanTaskRecord:
    """A task, or 404."""
    task = await hub.store.read(plan_tasks.get_task, task_id)
    if task is None:
        raise ApiError(404, "task_not_found", f"task {task_id!r} does not exist")
    return task


@router.post(
    "/build",
    status_code=201,
    response_model=TaskCreated,
    summary="Build a plan",
    max_body_size=SELF_BOUNDED_BODY,  # read_parts bounds it by the plan limits
)
async def build(request: Request, hub: HubDep, who: Operator) -> TaskCreated:
    """multipart: part 1 the composition (JSON or TOML), part 2 the plan's source zip, part 3
    (optional) a linked SDK zip. The build is cached by content."""
    limits = hub.plan_catalog.limits
    parts = await read_parts(
        request.headers.get("content-type", ""), request.stream(), limits.max_bytes * 2 + 1_000_000
    )
    if len(parts) not in (2, 3):
        raise ApiError(
            400,
            "malformed_body",
            "/build takes 2 or 3 parts (composition, plan zip, optional SDK zip); "
            f"got {len(parts)}",
        )
    media = parts[0].content_type or "application/json"
    composition, prefix = parse_composition(bytes(parts[0].data), media)
    source = check_archive(bytes(parts[1].data), limits, part="part 2")
    sdk = (
        check_archive(bytes(parts[2].data), limits, plan=False, part="part 3")
        if len(parts) == 3
        else None
    )
    assert source.manifest is not None
    if source.manifest.name != composition.global_.plan:
        problems = Problems(prefix)
        problems.add(
            ("global", "plan"),
            f"the composition names plan {composition.global_.plan!r}; the archive's manifest "
            f"is plan {source.manifest.name!r}",
        )
        problems.raise_if_any()
    run = resolve(composition, source.manifest, prefix)
    task_id = await hub.plan_runs.build(run, source.manifest, source, sdk, who.name)
    return TaskCreated(task_id=task_id, server_id=hub.server_id)


@router.post("/run", status_code=201, response_model=TaskCreated, summary="Run a composition")
async def run(request: Request, hub: HubDep, who: Operator) -> TaskCreated:
    """A composition (JSON or TOML) of a plan the hub knows; builds what it needs."""
    composition, prefix = parse_composition(
        await request.body(), request.headers.get("content-type", "")
    )
    plan, manifest = await hub.plan_catalog.require(
        composition.global_.plan, "/".join(("", *prefix, "global", "plan"))
    )
    resolved = resolve(composition, manifest, prefix)
    sources: tuple[str, str | None] = (plan.source_hash, None)
    artifacts = {g.run.artifact for g in composition.groups if g.run.artifact}
    artifacts |= {composition.global_.run.artifact} - {""}
    if len(artifacts) > 1:
        problems = Problems(prefix)
        problems.add(("groups",), "every group must run the same artifact")
        problems.raise_if_any()
    if artifacts:
        artifact = artifacts.pop()
        build = await hub.store.read(plan_catalog.get_build, artifact)
        if build is None or build.plan != plan.name:
            problems = Problems(prefix)
            problems.add(
                ("global", "run", "artifact"), f"no build {artifact!r} of plan {plan.name!r}"
            )
            problems.raise_if_any()
        assert build is not None
        sources = (build.source_hash, build.sdk_hash)
    task_id = await hub.plan_runs.start(resolved, manifest, sources, who.name)
    return TaskCreated(task_id=task_id, server_id=hub.server_id)


@router.post("/outputs", summary="A run's outputs as a tar.gz, by group and instance")
async def collect_outputs(body: OutputsRequest, hub: HubDep, _: Reader) -> Response:
    return await outputs_response(hub, body.run_id, _runner(body.runner))


async def outputs_response(hub: Hub, run_id: str, runner: str | None) -> Response:
    """The merged outputs of a run (404 unknown, 422 another runner's)."""
    task = await task_or_404(hub, run_id)
    if task.type != "run":
        raise ApiError(422, "not_a_run", f"task {run_id!r} is a {task.type}, not a run")
    if runner is not None and task.runner != runner:
        raise ApiError(422, "wrong_runner", f"run {run_id!r} ran on {task.runner}, not {runner}")
    shares = await hub.store.read(plan_runs.get_outputs, run_id)
    data = await asyncio.to_thread(
        outputs.merge, run_id, shares, task.result or {"state": task.state}
    )
    return Response(
        data,
        media_type="application/gzip",
        headers={"Content-Disposition": f'attachment; filename="{run_id}.tgz"'},
    )


@router.post("/terminate", response_model=Terminated, summary="Stop a runner's unfinished tasks")
async def terminate(body: RunnerRequest, hub: HubDep, who: Operator) -> Terminated:
    stopped = await hub.plan_runs.terminate(_runner(body.runner), who.name)
    return Terminated(runner=body.runner, tasks=stopped)


@router.post("/healthcheck", response_model=HealthReport, summary="Check (and fix) a runner")
async def health(body: HealthcheckRequest, hub: HubDep, _: Operator) -> HealthReport:
    return await healthcheck(_runner(body.runner), body.fix, hub.store, hub.plan_runs)


@router.post("/status", response_model=PlanTask, summary="A task's states and result")
async def status(body: TaskIdRequest, hub: HubDep, _: Reader) -> PlanTask:
    return task_view(await task_or_404(hub, body.task_id))


@router.post("/tasks", response_model=TaskList, summary="Tasks, newest first")
async def tasks(body: TaskFilters, hub: HubDep, _: Reader) -> TaskList:
    query = plan_tasks.TaskQuery(
        types=body.types,
        states=[str(s) for s in body.states],
        plan=body.plan,
        case=body.case,
        before=body.before,
        after=body.after,
        limit=body.limit,
    )
    found = await hub.store.read(plan_tasks.list_tasks, query)
    return TaskList(server_id=hub.server_id, tasks=[task_view(t) for t in found])


@router.post("/logs", summary="A task's log; follow=true streams it until the task ends")
async def logs(body: LogsRequest, request: Request, hub: HubDep, _: Reader) -> Response:
    task = await task_or_404(hub, body.task_id)
    if not body.follow:
        text = "".join(
            [chunk async for chunk in _log_text(hub, task.id, follow=False, request=request)]
        )
        return PlainTextResponse(text)
    return StreamingResponse(
        _log_text(hub, task.id, follow=True, request=request), media_type="text/plain"
    )


async def _log_text(
    hub: Hub, task_id: str, *, follow: bool, request: Request
) -> AsyncIterator[str]:
    """A task's own log (a build's), then its job's log chunks; following, new ones until the
    task has ended and every chunk was sent."""
    sent_own = 0
    after = 0
    while True:
        task = await task_or_404(hub, task_id)
        own = await hub.store.read(plan_tasks.get_log, task_id) or ""
        if len(own) > sent_own:
            yield own[sent_own:]
            sent_own = len(own)
        chunks = []
        if task.job_id is not None:
            chunks = await hub.store.read(
                event_store.log_chunks, task.job_id, after=after, limit=10_000
            )
            for chunk in chunks:
                after = chunk.id
                yield chunk.text
        if not follow or (task.state.finished and not chunks):
            if follow or task.state.finished:
                yield (
                    f"task {task_id}: {task.state}"
                    + (f": {task.error}" if task.error else "")
                    + "\n"
                )
            return
        if not chunks:
            if await request.is_disconnected():
                return
            await asyncio.sleep(FOLLOW_POLL)
