"""The job API: Start, Stop, Status, Retry, List, events and logs."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections import OrderedDict
from collections.abc import AsyncIterator, Coroutine
from datetime import datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import PlainTextResponse, StreamingResponse

from testfleet.hub.descriptors import param_overrides, read_descriptor
from testfleet.hub.errors import ApiError
from testfleet.hub.jobs.service import job_not_found
from testfleet.hub.live.job_feed import Ended
from testfleet.hub.routes.deps import (
    EventCursor,
    HubDep,
    JobId,
    Operator,
    Reader,
    StepFilter,
    TaskFilter,
)
from testfleet.hub.runtime import Hub
from testfleet.hub.status import build_event
from testfleet.protocol.api import (
    Acknowledged,
    ErrorDetail,
    EventList,
    JobCreated,
    JobList,
    JobStatus,
)
from testfleet.protocol.states import JobState
from testfleet.store import events as event_store
from testfleet.store import jobs as job_store
from testfleet.store.deletions import visible_job
from testfleet.store.records import StoredEvent

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"])
T = TypeVar("T")
REVOCATION_CHECK = 0.5  # seconds: a quiet followed stream looks this often for a revoked token
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


def _links_to_the_job() -> dict[str, Any]:
    """OpenAPI links from a created job to what can be done with it."""
    operations = ("job_status", "stop_job", "retry_job", "job_events", "job_logs")
    return {
        operation: {"operationId": operation, "parameters": {"job_id": "$response.body#/job_id"}}
        for operation in operations
    }


@router.post(
    "",
    status_code=201,
    response_model=JobCreated,
    summary="Start a job from a descriptor (JSON or YAML; ConTest's names accepted)",
    operation_id="start_job",
    openapi_extra={
        "parameters": [
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "description": "The same key (from the same requestor) gives the same job: a "
                "retried request never makes a second one. Keys are kept for a day.",
                "schema": {"type": "string", "minLength": 1, "maxLength": 200},
            }
        ],
        "responses": {"201": {"links": _links_to_the_job()}},
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/JobDescriptor"}},
                "application/yaml": {
                    "schema": {"type": "string", "description": "A JobDescriptor in YAML."}
                },
            },
        },
    },
)
async def start_job(
    request: Request,
    response: Response,
    hub: HubDep,
    who: Operator,
    param: Annotated[
        list[str], Query(description="NAME=VALUE: overrides a descriptor parameter (repeat).")
    ] = [],  # noqa: B006
) -> JobCreated:
    key = _idempotency_key(request)
    content_type = request.headers.get("content-type", "")
    descriptor = await read_descriptor(
        await request.body(),
        content_type,
        param_overrides(param),
        lambda name: f"query.param.{name}",
    )
    if key is None:
        job_id = await within_event_timeout(hub, "Start", hub.jobs.submit(descriptor, who.name))
    else:
        submitted = await within_event_timeout(
            hub, "Start", hub.jobs.submit_once(descriptor, who.name, key)
        )
        assert submitted.job_id is not None
        job_id = submitted.job_id
        if submitted.replayed:
            response.headers["Idempotent-Replayed"] = "true"
    return JobCreated(job_id=job_id, server_id=hub.server_id)


IDEMPOTENCY_KEY = "Idempotency-Key"
_KEY = re.compile(r"[\x21-\x7e]{1,200}")


def _idempotency_key(request: Request) -> str | None:
    """The request's Idempotency-Key: 1-200 printable ASCII characters, or none."""
    key = request.headers.get(IDEMPOTENCY_KEY)
    if key is None:
        return None
    if not _KEY.fullmatch(key):
        location = f"header.{IDEMPOTENCY_KEY}"
        raise ApiError(
            400,
            "invalid_request",
            f"{location}: 1-200 printable ASCII characters, no spaces",
            [ErrorDetail(location=location, message="1-200 printable ASCII characters")],
        )
    return key


@router.get("", response_model=JobList, summary="List jobs, newest first", operation_id="list_jobs")
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


@router.get(
    "/{job_id}", response_model=JobStatus, summary="The status of a job", operation_id="job_status"
)
async def job_status(job_id: JobId, hub: HubDep, _: Reader) -> JobStatus:
    return await within_event_timeout(hub, "Status", hub.jobs.status(job_id))


@router.post(
    "/{job_id}/stop",
    status_code=202,
    response_model=Acknowledged,
    summary="Stop a job",
    operation_id="stop_job",
)
async def stop_job(job_id: JobId, hub: HubDep, who: Operator) -> Acknowledged:
    state = await within_event_timeout(hub, "Stop", hub.jobs.stop(job_id, who.name))
    return Acknowledged(job_id=job_id, state=state, server_id=hub.server_id)


@router.post(
    "/{job_id}/retry",
    status_code=201,
    response_model=JobCreated,
    summary="Start a finished job again with the same descriptor",
    operation_id="retry_job",
)
async def retry_job(job_id: JobId, hub: HubDep, who: Operator) -> JobCreated:
    new_id = await within_event_timeout(hub, "Retry", hub.jobs.retry(job_id, who.name))
    return JobCreated(job_id=new_id, server_id=hub.server_id, retried_from=job_id)


@router.get(
    "/{job_id}/events",
    response_model=EventList,
    summary="A job's events; follow=true streams them (server-sent events)",
    operation_id="job_events",
)
async def job_events(
    job_id: JobId,
    hub: HubDep,
    who: Reader,
    after: EventCursor = 0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    kind: Annotated[list[str], Query()] = [],  # noqa: B006
    task_id: TaskFilter = None,
    tail: Annotated[
        bool, Query(description="The newest `limit` matching events instead of the oldest")
    ] = False,
    follow: bool = False,
) -> Response | EventList:
    await _require_job(hub, job_id)
    if follow:
        return StreamingResponse(
            _follow(hub, job_id, after, kind, who.token_id),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache"},
        )
    # A tail continues from the job's newest event when nothing matched; that newest event is
    # read first, so that a matching event stored in between is listed, never skipped.
    newest = (
        await hub.store.read(event_store.list_events, job_id, limit=1, last=True) if tail else []
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
    if tail and not records and newest:  # nothing matched: continue from the newest event
        next_after = max(after, newest[0].id)
    return EventList(server_id=hub.server_id, events=records, next_after=next_after)


@router.get(
    "/{job_id}/logs",
    response_class=PlainTextResponse,
    summary="A job's log output as text",
    operation_id="job_logs",
)
async def job_logs(
    job_id: JobId,
    hub: HubDep,
    _: Reader,
    task_id: TaskFilter = None,
    step: StepFilter = None,
) -> PlainTextResponse:
    await _require_job(hub, job_id)
    rows = await hub.store.read(
        event_store.log_chunks, job_id, task_id=task_id, step=step, limit=1_000_000
    )
    return PlainTextResponse("".join(chunk.text for chunk in rows))


async def _require_job(hub: Hub, job_id: int) -> None:
    if await hub.store.read(visible_job, job_id) is None:
        raise job_not_found(job_id)


async def _follow(
    hub: Hub, job_id: int, after: int, kinds: list[str], token_id: int | None
) -> AsyncIterator[str]:
    """Stream the job's events: first those stored already, then each as it is stored (from
    the job's shared feed); end with an `end` event once the job has finished.

    While the job is quiet, a keep-alive comment goes out every `sse_keepalive` seconds; a
    revoked token ends the stream with a `closed` event that says so.
    """
    clock = asyncio.get_running_loop().time
    keepalive = hub.config.sse_keepalive
    last_sent = clock()
    wait = min(REVOCATION_CHECK, keepalive)
    with hub.revocations.watch(token_id) as revoked:
        follow = hub.job_feeds.follow(job_id, after, kinds, wait=wait)
        async with contextlib.aclosing(follow) as feed:
            async for item in feed:
                if revoked.is_set():
                    yield _closed("the token was revoked")
                    return
                if isinstance(item, Ended):
                    yield f"event: end\ndata: {json.dumps({'state': item.state})}\n\n"
                    return
                for row in item:
                    yield _sse(row)
                    last_sent = clock()
                if not item and clock() - last_sent >= keepalive:
                    yield KEEPALIVE_COMMENT
                    last_sent = clock()


def _closed(reason: str) -> str:
    return f"event: closed\ndata: {json.dumps({'reason': reason})}\n\n"


_encoded: OrderedDict[int, str] = OrderedDict()
ENCODED_KEPT = 4096


def _sse(row: StoredEvent) -> str:
    """An event as a server-sent event, encoded once for every follower on this hub."""
    text = _encoded.get(row.id)
    if text is None:
        record = build_event(row)
        text = f"id: {record.id}\nevent: {record.kind}\ndata: {record.model_dump_json()}\n\n"
        _encoded[row.id] = text
        if len(_encoded) > ENCODED_KEPT:
            _encoded.popitem(last=False)
    return text
