"""The sync service's WebSocket: one per instance (or any client), scoped by run."""

from __future__ import annotations

import contextlib
import re

from fastapi import APIRouter, WebSocket
from starlette.websockets import WebSocketDisconnect

from testfleet.hub.auth import AGENT, OPERATE, authenticate
from testfleet.hub.errors import ApiError
from testfleet.protocol.sync import RUN_ID

router = APIRouter(tags=["sync service"])
_RUN_ID = re.compile(RUN_ID)


@router.websocket("/api/v1/sync/{run_id}")
async def sync_socket(websocket: WebSocket, run_id: str) -> None:
    """Barriers, signals and topics of run `run_id` (protocol: `testfleet.protocol.sync`).
    Refused (HTTP 403 at the handshake) without a token of role agent, operator or admin."""
    hub = websocket.app.state.hub
    try:
        await authenticate(websocket, AGENT | OPERATE)
    except ApiError:
        await websocket.close(code=1008)
        return
    if not _RUN_ID.match(run_id):
        await websocket.close(code=1008, reason="a run id is letters, digits, '.', '_' or '-'")
        return
    await websocket.accept()
    with contextlib.suppress(WebSocketDisconnect):
        await hub.sync.serve(websocket, run_id)
