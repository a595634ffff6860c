"""Inventory: agents and devices; and the agents' WebSocket."""

from __future__ import annotations

from collections import Counter

from fastapi import APIRouter, WebSocket

from testfleet.hub.auth import AGENT, authenticate
from testfleet.hub.errors import ApiError
from testfleet.hub.routes.deps import HubDep, Reader
from testfleet.protocol.api import AgentInfo, AgentList, DeviceInfo, DeviceList
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


@router.get("/devices", response_model=DeviceList, summary="Every device agents offer")
async def list_devices(hub: HubDep, _: Reader) -> DeviceList:
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
                claimed_at=d.claimed_at,
            )
            for d in devices
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
