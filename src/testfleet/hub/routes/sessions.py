"""The sessions API: live WebDriver sessions and their history, a session's command timeline
and final screenshot, and killing a stuck session."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from testfleet.hub.errors import ApiError
from testfleet.hub.routes.deps import HubDep, Operator, Reader
from testfleet.hub.runtime import Hub
from testfleet.protocol.sessions import SessionCommand, SessionCommands, SessionInfo, SessionList
from testfleet.protocol.types import INT64_MAX
from testfleet.store import driver_sessions as session_store
from testfleet.store.records import DriverSessionRecord

router = APIRouter(prefix="/api/v1/sessions", tags=["sessions"])
SessionKey = Annotated[
    str, Path(min_length=1, max_length=200, description="The session's number or WebDriver id")
]
STATES = {"queued", "creating", "active", "ending", "lost", "ended", "failed"}


def session_info(record: DriverSessionRecord) -> SessionInfo:
    """The API's view of a session record."""
    return SessionInfo(
        id=record.id,
        session_id=record.session_id,
        state=record.state,
        requestor=record.requestor,
        device_id=record.device_id,
        agent=record.agent_name,
        node_url=record.node_url,
        hub=record.hub,
        priority=record.priority,
        requested=record.requested,
        capabilities=record.capabilities,
        created_at=record.created_at,
        started_at=record.started_at,
        ended_at=record.ended_at,
        last_command_at=record.last_command_at,
        commands=record.commands,
        idle_timeout=record.idle_timeout,
        idle_expires_at=record.idle_expires_at,
        end_reason=record.end_reason,
        has_screenshot=bool(record.has_screenshot),
    )


def _states(state: str) -> tuple[str, ...]:
    if state == "live":
        return session_store.LIVE_STATES
    if state == "all":
        return ()
    wanted = tuple(s.strip() for s in state.split(",") if s.strip())
    unknown = [s for s in wanted if s not in STATES]
    if unknown or not wanted:
        raise ApiError(
            422,
            "invalid_request",
            f"query.state: {state!r}: use live, all, or states of {', '.join(sorted(STATES))}",
        )
    return wanted


@router.get("", response_model=SessionList, summary="Gateway sessions, newest first")
async def list_sessions(
    hub: HubDep,
    _: Reader,
    state: Annotated[
        str, Query(description="live (default: not over), all, or states, comma-separated")
    ] = "live",
    device: Annotated[str | None, Query(description="Only sessions of this device id")] = None,
    agent: Annotated[str | None, Query(description="Only sessions on this agent")] = None,
    requestor: Annotated[str | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(pattern=r"^[0-9]{1,18}$")] = None,
) -> SessionList:
    records = await hub.store.read(
        session_store.list_sessions,
        states=_states(state),
        device_id=device,
        agent=agent,
        requestor=requestor,
        before=int(cursor) if cursor else None,
        limit=limit + 1,
    )
    more = len(records) > limit
    records = records[:limit]
    return SessionList(
        server_id=hub.server_id,
        sessions=[session_info(r) for r in records],
        next_cursor=str(records[-1].id) if more else None,
    )


async def _find(hub: Hub, key: SessionKey) -> DriverSessionRecord:
    if key.isascii() and key.isdigit():
        number = int(key)
        record = await hub.store.read(session_store.get, number) if number <= INT64_MAX else None
    else:
        record = await hub.store.read(session_store.by_session_id, key)
    if record is None:
        raise ApiError(404, "not_found", f"no session {key!r} (a number or a WebDriver id)")
    return record


@router.get("/{key}", response_model=SessionInfo, summary="One session")
async def get_session(hub: HubDep, _: Reader, key: SessionKey) -> SessionInfo:
    return session_info(await _find(hub, key))


@router.get(
    "/{key}/commands", response_model=SessionCommands, summary="A session's command timeline"
)
async def session_commands(
    hub: HubDep,
    _: Reader,
    key: SessionKey,
    after: Annotated[int, Query(ge=0, le=INT64_MAX)] = 0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> SessionCommands:
    record = await _find(hub, key)
    await hub.gateway.log.flush_now()
    commands = await hub.store.read(session_store.commands_of, record.id, after=after, limit=limit)
    return SessionCommands(
        server_id=hub.server_id,
        session=record.id,
        commands=[
            SessionCommand(
                id=c.id,
                at=c.at,
                method=c.method,
                command=c.command,
                status=c.status,
                error=c.error,
                duration_ms=c.duration_ms,
            )
            for c in commands
        ],
        next_after=commands[-1].id if commands else after,
    )


@router.get(
    "/{key}/screenshot",
    response_class=Response,
    summary="The session's final screenshot (PNG), taken on browser devices as it ended",
    responses={200: {"content": {"image/png": {}}}},
)
async def session_screenshot(hub: HubDep, _: Reader, key: SessionKey) -> Response:
    record = await _find(hub, key)
    png = await hub.store.read(session_store.screenshot, record.id)
    if png is None:
        raise ApiError(404, "not_found", f"session {key} has no screenshot")
    return Response(png, media_type="image/png", headers={"cache-control": "max-age=3600"})


@router.delete("/{key}", response_model=SessionInfo, summary="Kill a session")
async def kill_session(hub: HubDep, who: Operator, key: SessionKey) -> SessionInfo:
    record = await _find(hub, key)
    after = await hub.gateway.ender.kill(record, who.name)
    if after is None:
        raise ApiError(
            409, "session_over", f"session {key} is already {record.state}; nothing to kill"
        )
    return session_info(after)
