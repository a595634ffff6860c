"""Inventory: agents and devices; and the agents' WebSocket."""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Any

from fastapi import APIRouter, Query, WebSocket

from testfleet.hub.auth import AGENT, authenticate
from testfleet.hub.errors import ApiError
from testfleet.hub.routes.deps import HubDep, Reader
from testfleet.protocol.api import AgentInfo, AgentList, DeviceInfo, DeviceList
from testfleet.protocol.states import DeviceState
from testfleet.protocol.wire import Error
from testfleet.store import agents as agent_store
from testfleet.store import devices as device_store

router = APIRouter(prefix="/api/v1", tags=["inventory"])
AGENT_WS_PATH = "/api/v1/agents/connect"


@router.get("/agents", response_model=AgentList, summary="Every agent that ever registered")
async def list_agents(hub: HubDep, _: Reader) -> AgentList:
    agents, devices = await hub.store.read(
        lambda conn: (agent_store.list_agents(conn), device_store.list_devices(conn))
    )
    per_agent = Counter(d.agent_id for d in devices)
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
                last_seen=a.last_seen,
                connected_at=a.connected_at,
                devices=per_agent[a.id],
            )
            for a in agents
        ],
    )


def _pairs(values: list[str], name: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for value in values:
        key, sep, wanted = value.partition("=")
        if not sep or not key:
            raise ApiError(422, "invalid_request", f"query.{name}: {value!r} is not KEY=VALUE")
        pairs[key] = wanted
    return pairs


def _has(offered: dict[str, Any], wanted: dict[str, str]) -> bool:
    return all(str(offered.get(key, "")).lower() == value.lower() for key, value in wanted.items())


@router.get("/devices", response_model=DeviceList, summary="Every device agents offer")
async def list_devices(
    hub: HubDep,
    _: Reader,
    capability: Annotated[
        list[str], Query(description="KEY=VALUE the device offers (repeatable)")
    ] = [],  # noqa: B006
    label: Annotated[
        list[str], Query(description="KEY=VALUE the device or its agent carries")
    ] = [],  # noqa: B006
    agent: Annotated[str | None, Query(description="Only this agent's devices")] = None,
    state: Annotated[DeviceState | None, Query()] = None,
    kind: Annotated[str | None, Query(description="host, browser, phone, webdriver ...")] = None,
) -> DeviceList:
    wanted_caps, wanted_labels = _pairs(capability, "capability"), _pairs(label, "label")
    devices = await hub.store.read(device_store.list_devices)
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
                url=d.url,
                holder_session_id=d.holder_session_id,
                last_used_at=d.last_used_at,
            )
            for d in devices
            if (agent is None or d.agent_name == agent)
            and (state is None or d.state == state)
            and (kind is None or d.kind == kind)
            and _has(d.capabilities, wanted_caps)
            and _has({**(d.agent_labels or {}), **d.labels}, wanted_labels)
        ],
    )


@router.websocket("/agents/connect")
async def agent_socket(websocket: WebSocket) -> None:
    """One agent's connection (the wire protocol of `testfleet.protocol.wire`)."""
    hub = websocket.app.state.hub
    try:
        await authenticate(websocket, AGENT)
    except ApiError as error:
        await websocket.accept()
        await websocket.send_text(
            Error(code=error.code, message=error.message, fatal=True).model_dump_json()
        )
        await websocket.close(code=1008)
        return
    await hub.sessions.serve(websocket)
