"""The job API: Start, Stop, Status, Retry, List, events and logs."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Coroutine
from datetime import datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import PlainTextResponse, StreamingResponse

from testfleet.hub.descriptors import check_descriptor, parse_body
from testfleet.hub.errors import ApiError
from testfleet.hub.jobs.service import job_not_found
from testfleet.hub.live.job_feed import Ended
from testfleet.hub.routes.deps import HubDep, Operator, Reader
from testfleet.hub.runtime import Hub
from testfleet.hub.status import build_event
from testfleet.protocol.api import (
    Acknowledged,
    EventList,
    JobCreated,
    JobList,
    JobStatus,
)
from testfleet.protocol.states import JobState
from testfleet.store import events as event_store
from testfleet.store import jobs as job_store

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"])
T = TypeVar("T")
_FOLLOW_POLL = 1.0
KEEPALIVE_COMMENT = ": keep-alive\n\n"
"""Sent on a followed stream after `HubConfig.sse_keepalive` seconds without an event: an SSE
comment, which clients ignore, so that proxies with idle timeouts do not cut the stream."""


_abandoned: set[asyncio.Task[Any]] = set()


async def within_event_timeout(hub: Hub, what: str, work: Coroutine[Any, Any, T]) -> T:
    """Answer 503 when the job manager does not answer within its event timeout.

    The late work is cancelled but not waited for: its clean-up (a rollback stuck behind a
    locked store, say) must not hold the answer back.
    """
    task = asyncio.ensure_future(work)
    done, _ = await asyncio.wait({task}, timeout=hub.config.event_timeout)
    if task in done:
        return task.result()
    task.cancel()
    _abandoned.add(task)
    task.add_done_callback(_abandoned.discard)
    raise ApiError(
        503,
        "event_timeout",
        f"the job manager did not answer {what} within {hub.config.event_timeout:g} s; "
        "the hub is overloaded or its store is locked; the request was abandoned (list jobs "
        "before submitting again: a commit already under way may still land)",
    )


@router.post(
    "",
    status_code=201,
    response_model=JobCreated,
    summary="Start a job from a descriptor (JSON or YAML; ConTest's names accepted)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"type": "object"}},
                "application/yaml": {"schema": {"type": "string"}},
            },
        }
    },
)
async def start_job(request: Request, hub: HubDep, who: Operator) -> JobCreated:
    descriptor = check_descriptor(
        parse_body(await request.body(), request.headers.get("content-type", ""))
    )
    job_id = await within_event_timeout(hub, "Start", hub.jobs.submit(descriptor, who.name))
    return JobCreated(job_id=job_id, server_id=hub.server_id)


@router.get("", response_model=JobList, summary="List jobs, newest first")
async def list_jobs(
    hub: HubDep,
    _: Reader,
    state: Annotated[list[JobState], Query()] = [],  # noqa: B006
    tag: Annotated[list[str], Query()] = [],  # noqa: B006
    requestor: str | None = None,
    name: str | None = None,
    name_contains: Annotated[
        str | None, Query(max_length=200, description="Part of the name, any case")
    ] = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    cursor: str | None = None,
) -> JobList:
    query = job_store.JobQuery(
        states=[str(s) for s in state],
        tags=tag,
        requestor=requestor,
        name=name,
        name_contains=name_contains or None,
        created_after=_aware(created_after, "created_after"),
        created_before=_aware(created_before, "created_before"),
        limit=limit,
        cursor=cursor,
    )
    return await within_event_timeout(hub, "List", hub.jobs.list(query))


def _aware(value: datetime | None, name: str) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ApiError(422, "invalid_request", f"query.{name}: give a time zone (e.g. 'Z')")
    return value


@router.get("/{job_id}", response_model=JobStatus, summary="The status of a job")
async def job_status(job_id: int, hub: HubDep, _: Reader) -> JobStatus:
    return await within_event_timeout(hub, "Status", hub.jobs.status(job_id))


@router.post("/{job_id}/stop", status_code=202, response_model=Acknowledged, summary="Stop a job")
async def stop_job(job_id: int, hub: HubDep, who: Operator) -> Acknowledged:
    state = await within_event_timeout(hub, "Stop", hub.jobs.stop(job_id, who.name))
    return Acknowledged(job_id=job_id, state=state, server_id=hub.server_id)


@router.post(
    "/{job_id}/retry",
    status_code=201,
    response_model=JobCreated,
    summary="Start a finished job again with the same descriptor",
)
async def retry_job(job_id: int, hub: HubDep, who: Operator) -> JobCreated:
    new_id = await within_event_timeout(hub, "Retry", hub.jobs.retry(job_id, who.name))
    return JobCreated(job_id=new_id, server_id=hub.server_id, retried_from=job_id)


@router.get(
    "/{job_id}/events",
    response_model=EventList,
    summary="A job's events; follow=true streams them (server-sent events)",
)
async def job_events(
    job_id: int,
    request: Request,
    hub: HubDep,
    _: Reader,
    after: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    kind: Annotated[list[str], Query()] = [],  # noqa: B006
    task_id: int | None = None,
    tail: Annotated[
        bool, Query(description="The newest `limit` matching events instead of the oldest")
    ] = False,
    follow: bool = False,
) -> Response | EventList:
    await _require_job(hub, job_id)
    if follow:
        return StreamingResponse(
            _follow(hub, request, job_id, after, kind),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache"},
        )
    rows = await hub.store.read(
        event_store.list_events,
        job_id,
        after=after,
        limit=limit,
        kinds=kind,
        task_id=task_id,
        last=tail,
    )
    records = [build_event(row) for row in rows]
    next_after = records[-1].id if records else after
    if tail and not records:  # nothing matched: continue from the job's newest event
        newest = await hub.store.read(event_store.list_events, job_id, limit=1, last=True)
        next_after = max(after, newest[0].id) if newest else after
    return EventList(server_id=hub.server_id, events=records, next_after=next_after)


@router.get(
    "/{job_id}/logs", response_class=PlainTextResponse, summary="A job's log output as text"
)
async def job_logs(
    job_id: int,
    hub: HubDep,
    _: Reader,
    task_id: int | None = None,
    step: Annotated[int | None, Query(ge=0)] = None,
) -> PlainTextResponse:
    await _require_job(hub, job_id)
    rows = await hub.store.read(
        event_store.log_chunks, job_id, task_id=task_id, step=step, limit=1_000_000
    )
    return PlainTextResponse("".join(chunk.text for chunk in rows))


async def _require_job(hub: Hub, job_id: int) -> None:
    if await hub.store.read(job_store.get_job, job_id) is None:
        raise job_not_found(job_id)


async def _follow(
    hub: Hub, request: Request, job_id: int, after: int, kinds: list[str]
) -> AsyncIterator[str]:
    """Stream events as they are stored; end with an `end` event once the job has finished.

    While the job is quiet, a keep-alive comment goes out every `sse_keepalive` seconds.
    """
    clock = asyncio.get_running_loop().time
    keepalive = hub.config.sse_keepalive
    last_sent = clock()
    wait = min(_FOLLOW_POLL, keepalive)
    async with contextlib.aclosing(hub.job_feeds.follow(job_id, after, kinds, wait=wait)) as feed:
        async for item in feed:
            if isinstance(item, Ended):
                yield f"event: end\ndata: {json.dumps({'state': item.state})}\n\n"
                return
            for row in item:
                record = build_event(row)
                yield f"id: {record.id}\nevent: {record.kind}\ndata: {record.model_dump_json()}\n\n"
                last_sent = clock()
            if item:
                continue
            if await request.is_disconnected():
                return
            if clock() - last_sent >= keepalive:
                yield KEEPALIVE_COMMENT
                last_sent = clock()
