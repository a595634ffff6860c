"""`/api/v1/jobs/{id}/developer/ws`: developer mode's WebSocket (see docs/devmode.md)."""

from __future__ import annotations

import contextlib
import json

from fastapi import APIRouter, WebSocket

from testfleet.hub.auth import READ, authenticate
from testfleet.hub.devmode.channel import DeveloperChannel
from testfleet.hub.errors import ApiError
from testfleet.hub.routes.deps import JobId

router = APIRouter(prefix="/api/v1", tags=["developer mode"])


@router.websocket("/jobs/{job_id}/developer/ws")
async def developer(websocket: WebSocket, job_id: JobId) -> None:
    """Send `{"cmd": NAME, ...}`; receive `{"type": "info"|"warning"|"error", "what": ...,
    "data": {...}}`. An operator joins the job's developer session; a viewer watches."""
    hub = websocket.app.state.hub
    try:
        who = await authenticate(websocket, READ, query_token=True)
    except ApiError as error:
        await websocket.accept()
        refusal = {"type": "error", "what": error.code, "data": {"message": error.message}}
        with contextlib.suppress(Exception):
            await websocket.send_text(json.dumps(refusal))
            await websocket.close(code=1008)
        return
    channel = DeveloperChannel(websocket, hub.developer_mode, hub.job_feeds, job_id, who)
    await channel.serve()
