"""Inventory: agents and devices; and the agents' WebSocket."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Annotated, TypeVar

from fastapi import APIRouter, Query, WebSocket
from starlette.routing import WebSocketRoute

from testfleet.hub.auth import AGENT, authenticate
from testfleet.hub.errors import ApiError
from testfleet.hub.routes.deps import HubDep, Reader
from testfleet.protocol.api import AgentInfo, AgentList, DeviceInfo, DeviceList, ErrorDetail
from testfleet.protocol.states import AgentState, DeviceState
from testfleet.protocol.wire import Error
from testfleet.store.inventory_queries import (
    AgentQuery,
    DeviceQuery,
    InventoryCursorError,
    list_agents_page,
    list_devices_page,
)

router = APIRouter(prefix="/api/v1", tags=["inventory"])
AGENT_WS_PATH = "/api/v1/agents/connect"


Pairs = Annotated[list[str], Query()]
Limit = Annotated[int, Query(ge=1, le=5000, description="Items in a page.")]


@router.get(
    "/agents",
    response_model=AgentList,
    summary="Agents that ever registered, a page at a time (by name), filtered",
)
async def list_agents(
    hub: HubDep,
    _: Reader,
    state: Annotated[list[AgentState], Query()] = [],  # noqa: B006
    label: Annotated[
        list[str], Query(description="KEY=VALUE: agents with this label (repeat: all).")
    ] = [],  # noqa: B006
    on_hub: Annotated[str | None, Query(alias="hub", max_length=200)] = None,
    limit: Limit = 1000,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> AgentList:
    query = AgentQuery(
        states=[str(s) for s in state],
        hub=on_hub,
        labels=_pairs(label, "label"),
        limit=limit,
        cursor=cursor,
    )
    page = await _page(hub.store.read(list_agents_page, query))
    return AgentList(
        server_id=hub.server_id,
        agents=[
            AgentInfo(
                agent_id=a.id,
                name=a.name,
                state=a.state,
                version=a.version,
                labels=a.labels,
                hub=a.hub,
                last_seen=page.heard.get(a.id),
                connected_at=a.connected_at,
                devices=page.device_counts.get(a.id, 0),
            )
            for a in page.agents
        ],
        next_cursor=page.next_cursor,
    )


@router.get(
    "/devices",
    response_model=DeviceList,
    summary="Devices agents offer, a page at a time (by id), filtered",
)
async def list_devices(
    hub: HubDep,
    _: Reader,
    state: Annotated[list[DeviceState], Query()] = [],  # noqa: B006
    agent: Annotated[str | None, Query(max_length=100)] = None,
    kind: Annotated[str | None, Query(max_length=50)] = None,
    label: Annotated[
        list[str],
        Query(description="KEY=VALUE: the device (or else its agent) has this label; repeat: all."),
    ] = [],  # noqa: B006
    capability: Annotated[
        list[str],
        Query(description="KEY=VALUE: devices offering this capability (repeat: all)."),
    ] = [],  # noqa: B006
    limit: Limit = 1000,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> DeviceList:
    query = DeviceQuery(
        states=[str(s) for s in state],
        agent=agent,
        kind=kind,
        labels=_pairs(label, "label"),
        capabilities=_pairs(capability, "capability"),
        limit=limit,
        cursor=cursor,
    )
    devices, next_cursor = await _page(hub.store.read(list_devices_page, query))
    return DeviceList(
        server_id=hub.server_id,
        devices=[
            DeviceInfo(
                device_id=d.id,
                name=d.name,
                agent=d.agent_name,
                kind=d.kind,
                state=d.state,
                capabilities=d.capabilities,
                labels=d.labels,
                holder_job_id=d.holder_job_id,
                lease_expires_at=d.lease_expires_at,
                claimed_at=d.claimed_at,
                url=d.url,
                holder_session_id=d.holder_session_id,
                last_used_at=d.last_used_at,
            )
            for d in devices
        ],
        next_cursor=next_cursor,
    )


T = TypeVar("T")


async def _page(reading: Awaitable[T]) -> T:
    try:
        return await reading
    except InventoryCursorError as error:
        raise ApiError(400, "invalid_cursor", str(error)) from None


def _pairs(values: list[str], name: str) -> dict[str, str]:
    """`["pool=a"]` -> `{"pool": "a"}`; 422 naming a value that is not KEY=VALUE."""
    pairs: dict[str, str] = {}
    for value in values:
        key, sep, val = value.partition("=")
        if not sep or not key:
            message = f"{value!r}: give KEY=VALUE"
            location = f"query.{name}"
            raise ApiError(
                422,
                "invalid_request",
                f"{location}: {message}",
                [ErrorDetail(location=location, message=message)],
            )
        pairs[key] = val
    return pairs


async def agent_socket(websocket: WebSocket) -> None:
    """One agent's connection (the wire protocol of `testfleet.protocol.wire`).

    A plain Starlette route, not FastAPI's: it takes no dependencies, and FastAPI's keeps
    three exit stacks and the solved dependencies for the whole life of every connection
    (about 8 KB per agent, docs/scaling.md)."""
    hub = websocket.app.state.hub
    try:
        who = await authenticate(websocket, AGENT)
    except ApiError as error:
        await websocket.accept()
        await websocket.send_text(
            Error(code=error.code, message=error.message, fatal=True).model_dump_json()
        )
        await websocket.close(code=1008)
        return
    await hub.sessions.serve(websocket, who if hub.config.auth_enabled else None)


router.routes.append(WebSocketRoute(AGENT_WS_PATH, agent_socket))
