"""testfleet's own test plan API: the catalog of plans, a run's page (groups, instances,
outcomes, sync state, outputs), and what agents running instances send and fetch."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse

from testfleet.hub.auth import AGENT, OPERATE, READ, Principal, require
from testfleet.hub.errors import ApiError
from testfleet.hub.routes.deps import SELF_BOUNDED_BODY, HubDep, Operator, Reader
from testfleet.hub.routes.testground import outputs_response, task_or_404
from testfleet.hub.runtime import Hub
from testfleet.hub.testplans import outputs
from testfleet.hub.testplans.views import group_views, plan_view, task_view
from testfleet.protocol.plan_api import (
    InstanceReports,
    PlanInfo,
    PlanList,
    RunDetail,
    SyncSnapshot,
    TaskList,
    TaskState,
    TaskType,
)
from testfleet.protocol.wire import utcnow
from testfleet.store import plan_runs, plan_tasks
from testfleet.store.plan_records import PlanTaskRecord

router = APIRouter(prefix="/api/v1", tags=["test plans"])
AgentCaller = Annotated[Principal, Depends(require(AGENT))]
Fetcher = Annotated[Principal, Depends(require(AGENT | OPERATE | READ))]
SNAPSHOT_EVERY = 0.5


async def _limited_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 past `limit` bytes (before it is all read)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, "too_large", f"the body may be at most {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise ApiError(413, "too_large", f"the body may be at most {limit} bytes")
    return bytes(body)


@router.get("/plans", response_model=PlanList, summary="The plans this hub knows")
async def list_plans(hub: HubDep, _: Reader) -> PlanList:
    return PlanList(
        server_id=hub.server_id, plans=[plan_view(p) for p in await hub.plan_catalog.list()]
    )


@router.post(
    "/plans",
    status_code=201,
    response_model=PlanInfo,
    summary="Import a plan (its directory as a zip, manifest.toml at the top)",
    openapi_extra={"requestBody": {"required": True, "content": {"application/zip": {}}}},
    max_body_size=SELF_BOUNDED_BODY,  # _limited_body bounds it by the plan limits
)
async def import_plan(request: Request, hub: HubDep, who: Operator) -> PlanInfo:
    data = await _limited_body(request, hub.plan_catalog.limits.max_bytes)
    return plan_view(await hub.plan_catalog.import_archive(data, who.name))


@router.get("/plans/{name}", response_model=PlanInfo, summary="One plan and its manifest")
async def get_plan(name: str, hub: HubDep, _: Reader) -> PlanInfo:
    plan = await hub.plan_catalog.get(name)
    if plan is None:
        raise ApiError(404, "plan_not_found", f"plan {name!r} does not exist")
    return plan_view(plan)


@router.get("/plan-sources/{content_hash}", summary="A stored plan (or SDK) archive")
async def plan_source(content_hash: str, hub: HubDep, _: Fetcher) -> Response:
    data = await hub.plan_catalog.archive(content_hash)
    if data is None:
        raise ApiError(404, "source_not_found", f"no archive {content_hash!r}")
    return Response(data, media_type="application/zip")


@router.get("/plan-tasks", response_model=TaskList, summary="Build and run tasks, newest first")
async def list_plan_tasks(
    hub: HubDep,
    _: Reader,
    type: Annotated[list[TaskType], Query()] = [],  # noqa: B006
    state: Annotated[list[TaskState], Query()] = [],  # noqa: B006
    plan: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> TaskList:
    query = plan_tasks.TaskQuery(types=type, states=[str(s) for s in state], plan=plan, limit=limit)
    found = await hub.store.read(plan_tasks.list_tasks, query)
    return TaskList(server_id=hub.server_id, tasks=[task_view(t) for t in found])


@router.get("/plan-runs/{run_id}", response_model=RunDetail, summary="A run: groups, instances")
async def run_detail(run_id: str, hub: HubDep, _: Reader) -> RunDetail:
    task = await _run_or_404(hub, run_id)
    instances = await hub.store.read(plan_runs.list_instances, run_id)
    return RunDetail(
        server_id=hub.server_id,
        task=task_view(task),
        composition=task.composition,
        groups=group_views(task, instances),
    )


async def _run_or_404(hub: Hub, run_id: str) -> PlanTaskRecord:
    task = await task_or_404(hub, run_id)
    if task.type != "run":
        raise ApiError(404, "run_not_found", f"task {run_id!r} is a {task.type}, not a run")
    return task


@router.post("/plan-runs/{run_id}/instances", summary="An agent reports its instances")
async def report_instances(
    run_id: str, body: InstanceReports, hub: HubDep, _: AgentCaller
) -> dict[str, int]:
    await _run_or_404(hub, run_id)
    reports = [plan_runs.Report(r.seq, r.state, r.exit_code, r.error) for r in body.reports]
    changed = await hub.store.write(plan_runs.record_reports, run_id, body.agent, reports, utcnow())
    return {"changed": changed}


@router.put(
    "/plan-runs/{run_id}/outputs/{part}",
    status_code=204,
    summary="An agent's outputs",
    max_body_size=SELF_BOUNDED_BODY,  # _limited_body bounds it by outputs.MAX_SHARE
)
async def put_outputs(
    run_id: str, part: str, request: Request, hub: HubDep, _: AgentCaller
) -> Response:
    await _run_or_404(hub, run_id)
    data = await _limited_body(request, outputs.MAX_SHARE)
    problem = await asyncio.to_thread(outputs.check_share, data)
    if problem is not None:
        raise ApiError(422, "invalid_outputs", problem)
    await hub.store.write(plan_runs.put_output, run_id, part[:200], data, utcnow())
    return Response(status_code=204)


@router.get("/plan-runs/{run_id}/outputs", summary="A run's outputs as a tar.gz")
async def get_outputs(run_id: str, hub: HubDep, _: Reader) -> Response:
    return await outputs_response(hub, run_id, None)


@router.get(
    "/plan-runs/{run_id}/sync",
    response_model=SyncSnapshot,
    summary="The run's sync states and topics; follow=true streams them (server-sent events)",
)
async def sync_state(
    run_id: str, request: Request, hub: HubDep, _: Reader, follow: bool = False
) -> Response | SyncSnapshot:
    await _run_or_404(hub, run_id)
    if not follow:
        return await hub.sync.snapshot(run_id)
    return StreamingResponse(
        _snapshots(hub, run_id, request),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache"},
    )


async def _snapshots(hub: Hub, run_id: str, request: Request) -> AsyncIterator[str]:
    """A snapshot whenever it changes (looked at twice a second) until the run has ended."""
    last = ""
    quiet = 0.0
    while not await request.is_disconnected():
        snapshot = (await hub.sync.snapshot(run_id)).model_dump_json()
        if snapshot != last or quiet >= hub.config.sse_keepalive:
            yield f"event: sync\ndata: {snapshot}\n\n"
            last, quiet = snapshot, 0.0
        task = await task_or_404(hub, run_id)
        if task.state.finished:
            yield f"event: end\ndata: {json.dumps({'state': str(task.state)})}\n\n"
            return
        await asyncio.sleep(SNAPSHOT_EVERY)
        quiet += SNAPSHOT_EVERY
