"""Coverage sessions: Drill4J's dispatch-action (by probe or by application), sessions, the
connected probes, realtime coverage as server-sent events, and the probes' WebSocket."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Query, Request, WebSocket
from fastapi.responses import StreamingResponse
from pydantic import ValidationError

from testfleet.hub.auth import AGENT, authenticate
from testfleet.hub.coverage.reports import totals
from testfleet.hub.coverage.service import session_not_found
from testfleet.hub.coverage.targets import Target
from testfleet.hub.errors import ApiError, json_pointer
from testfleet.hub.routes.deps import HubDep, Operator, Reader
from testfleet.hub.runtime import Hub
from testfleet.protocol.api import ErrorDetail
from testfleet.protocol.coverage import ProbeError
from testfleet.protocol.coverage_api import (
    ACTIONS,
    ActionResult,
    ProbeInfo,
    ProbeList,
    SessionInfo,
    SessionList,
    SessionState,
)
from testfleet.store import coverage as coverage_store
from testfleet.store.coverage_records import SessionRecord

router = APIRouter(prefix="/api/v1/coverage", tags=["coverage"])
LIVE_INTERVAL = 2.0
"""Realtime sessions are recalculated and pushed at least this often (Drill4J: 2 s)."""

_ACTION_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"type": "object"}}},
        "description": 'e.g. {"type": "START", "payload": {"testType": "AUTO"}}',
    }
}


async def session_info(hub: Hub, session: SessionRecord) -> SessionInfo:
    """The API's view of a session, with its coverage so far."""
    covered = await hub.coverage.covered(session)
    return SessionInfo(
        sessionId=session.id,
        app=session.app,
        build=session.version,
        agents=session.agents,
        testType=session.test_type,
        testName=session.test_name,
        isRealtime=session.is_realtime,
        isGlobal=session.is_global,
        state=session.state,
        startedAt=session.started_at,
        finishedAt=session.finished_at,
        startedBy=session.started_by,
        jobId=session.job_id,
        totals=totals(covered, session.total),
    )


async def _dispatch(request: Request, hub: Hub, target: Target, who: str) -> ActionResult:
    body = await request.body()
    try:
        action = ACTIONS.validate_json(body or b"null")
    except ValidationError as error:
        details = [
            ErrorDetail(
                location=json_pointer(e["loc"][1:] if e["loc"] else ()) or "/", message=e["msg"]
            )
            for e in error.errors()
        ]
        first = details[0]
        raise ApiError(
            422, "invalid_request", f"{first.location}: {first.message}", details
        ) from None
    sessions = await hub.coverage.dispatch(target, action, who)
    return ActionResult(action=action.type, sessions=[await session_info(hub, s) for s in sessions])


@router.post(
    "/agents/{agent_id}/dispatch-action",
    response_model=ActionResult,
    summary="START, STOP, CANCEL, STOP_ALL, CANCEL_ALL or ADD_SESSION_DATA on one probe",
    openapi_extra=_ACTION_BODY,
)
async def dispatch_to_agent(
    agent_id: str, request: Request, hub: HubDep, who: Operator
) -> ActionResult:
    return await _dispatch(request, hub, Target(agent_id=agent_id), who.name)


@router.post(
    "/apps/{app}/dispatch-action",
    response_model=ActionResult,
    summary="The same on every probe of an application (of one build: the newest, or ?build=)",
    openapi_extra=_ACTION_BODY,
)
async def dispatch_to_app(
    app: str, request: Request, hub: HubDep, who: Operator, build: str | None = None
) -> ActionResult:
    return await _dispatch(request, hub, Target(app=app, build=build), who.name)


@router.get("/agents", response_model=ProbeList, summary="Connected probes")
async def list_probes(hub: HubDep, _: Reader, app: str | None = None) -> ProbeList:
    probes = await hub.store.read(coverage_store.list_probes, app=app)
    sessions = await hub.store.read(
        coverage_store.list_sessions, app=app, states=("active", "stopping"), limit=10_000
    )
    return ProbeList(
        agents=[
            ProbeInfo(
                agent_id=p.agent_id,
                app=p.app,
                build=p.version,
                instance=p.instance_id,
                hub=p.hub,
                connected_at=p.connected_at,
                active_sessions=[s.id for s in sessions if p.agent_id in s.agents],
            )
            for p in probes
        ]
    )


@router.get("/sessions", response_model=SessionList, summary="Sessions, newest first")
async def list_sessions(
    hub: HubDep,
    _: Reader,
    app: str | None = None,
    build: str | None = None,
    state: Annotated[list[SessionState], Query()] = [],  # noqa: B006
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> SessionList:
    build_id = None
    if build is not None:
        if app is None:
            raise ApiError(422, "invalid_request", "query.build: give app too")
        found = await hub.store.read(coverage_store.get_build, app, build)
        if found is None:
            return SessionList(sessions=[])
        build_id = found.id
    sessions = await hub.store.read(
        coverage_store.list_sessions, app=app, build_id=build_id, states=state, limit=limit
    )
    return SessionList(sessions=[await session_info(hub, s) for s in sessions])


@router.get("/sessions/{session_id}", response_model=SessionInfo, summary="One session")
async def get_session(session_id: str, hub: HubDep, _: Reader) -> SessionInfo:
    return await session_info(hub, await require_session(hub, session_id))


async def require_session(hub: Hub, session_id: str) -> SessionRecord:
    """The session, or 404 "session not found"."""
    session = await hub.store.read(coverage_store.get_session, session_id)
    if session is None:
        raise session_not_found(session_id)
    return session


@router.get(
    "/sessions/{session_id}/live",
    summary="Server-sent events: `coverage` with the session's totals whenever they change "
    "(at least every 2 s while it is open), then `end`",
)
async def live(session_id: str, request: Request, hub: HubDep, _: Reader) -> StreamingResponse:
    await require_session(hub, session_id)
    return StreamingResponse(
        _live(hub, request, session_id),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache"},
    )


async def _live(hub: Hub, request: Request, session_id: str) -> AsyncIterator[str]:
    board = hub.coverage.live
    last = ""
    while True:
        seen = board.version(session_id)
        session = await require_session(hub, session_id)
        info = await session_info(hub, session)
        live_session = board.session(session_id)
        data = info.model_dump_json()
        if live_session is not None:
            data = data[:-1] + f', "probeCount": {live_session.probe_count}}}'
        if data != last:
            yield f"event: coverage\ndata: {data}\n\n"
            last = data
        if not session.open:
            yield f'event: end\ndata: {{"state": "{session.state}"}}\n\n'
            return
        if await request.is_disconnected():
            return
        await board.wait(session_id, seen, LIVE_INTERVAL)
        await asyncio.sleep(0)


@router.websocket("/probes/connect")
async def probe_socket(websocket: WebSocket) -> None:
    """One probe's connection (`testfleet.protocol.coverage`)."""
    hub: Hub = websocket.app.state.hub
    try:
        await authenticate(websocket, AGENT)
    except ApiError as error:
        await websocket.accept()
        await websocket.send_text(
            ProbeError(code=error.code, message=error.message, fatal=True).model_dump_json()
        )
        await websocket.close(code=1008)
        return
    await hub.probe_server.serve(websocket)
