"""The job API: Start, Stop, Status, Retry, List, events and logs."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Coroutine
from datetime import datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import PlainTextResponse, StreamingResponse
from sqlalchemy import Connection

from testfleet.hub.descriptors import check_descriptor, param_overrides, parse_body
from testfleet.hub.errors import ApiError
from testfleet.hub.jobs.service import job_not_found
from testfleet.hub.routes.deps import HubDep, Operator, Reader
from testfleet.hub.runtime import Hub
from testfleet.protocol.api import (
    Acknowledged,
    EventList,
    EventRecord,
    JobCreated,
    JobList,
    JobStatus,
)
from testfleet.protocol.states import JobState
from testfleet.store import events as event_store
from testfleet.store import jobs as job_store
from testfleet.store.deletions import visible_job
from testfleet.store.records import JobRecord, StoredEvent

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
async def start_job(
    request: Request,
    hub: HubDep,
    who: Operator,
    param: Annotated[
        list[str], Query(description="NAME=VALUE: overrides a descriptor parameter (repeat).")
    ] = [],  # noqa: B006
) -> JobCreated:
    descriptor = check_descriptor(
        parse_body(await request.body(), request.headers.get("content-type", "")),
        param_overrides(param),
        lambda name: f"query.param.{name}",
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
        event_store.list_events, job_id, after=after, limit=limit, kinds=kind
    )
    records = [_record(row) for row in rows]
    return EventList(
        server_id=hub.server_id, events=records, next_after=records[-1].id if records else after
    )


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
    if await hub.store.read(visible_job, job_id) is None:
        raise job_not_found(job_id)


def _record(row: StoredEvent) -> EventRecord:
    return EventRecord(
        id=row.id,
        kind=row.kind,
        job_id=row.job_id,
        task_id=row.task_id,
        at=row.at,
        data=row.data,
        agent=row.agent_name,
    )


async def _follow(
    hub: Hub, request: Request, job_id: int, after: int, kinds: list[str]
) -> AsyncIterator[str]:
    """Stream events as they are stored; end with an `end` event once the job has finished.

    While the job is quiet, a keep-alive comment goes out every `sse_keepalive` seconds.
    """
    clock = asyncio.get_running_loop().time
    keepalive = hub.config.sse_keepalive
    last_sent = clock()
    while True:
        seen = hub.signals.job_version(job_id)
        rows, job = await hub.store.read(_events_and_job, job_id, after, kinds)
        for row in rows:
            record = _record(row)
            after = record.id
            yield f"id: {record.id}\nevent: {record.kind}\ndata: {record.model_dump_json()}\n\n"
        if job is None or (job.state.finished and not rows):
            state = job.state if job is not None else "deleted"
            yield f"event: end\ndata: {json.dumps({'state': state})}\n\n"
            return
        if rows:
            last_sent = clock()
            continue
        if await request.is_disconnected():
            return
        if clock() - last_sent >= keepalive:
            yield KEEPALIVE_COMMENT
            last_sent = clock()
        quiet_left = keepalive - (clock() - last_sent)
        await hub.signals.wait_job(job_id, seen, min(_FOLLOW_POLL, quiet_left))


def _events_and_job(
    conn: Connection, job_id: int, after: int, kinds: list[str]
) -> tuple[list[StoredEvent], JobRecord | None]:
    """The job, then its events: a job read as finished has its last events stored already
    (the other order could miss them if the job ended between the two reads)."""
    job = job_store.get_job(conn, job_id)
    return event_store.list_events(conn, job_id, after=after, limit=1000, kinds=kinds), job
