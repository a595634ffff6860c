"""`/api/v1/live`: the live channel (a WebSocket) that the web UI follows jobs and the lab on."""

from __future__ import annotations

import contextlib

from fastapi import APIRouter, WebSocket

from testfleet.hub.auth import READ, authenticate
from testfleet.hub.errors import ApiError
from testfleet.hub.live.channel import LiveChannel
from testfleet.protocol.lab import LiveError

router = APIRouter(prefix="/api/v1", tags=["live"])


@router.websocket("/live")
async def live(websocket: WebSocket) -> None:
    """Send `follow_job`, `unfollow_job` and `watch_lab`; receive `event`, `job_end`,
    `lab_changed` and `error` (see docs/api.md)."""
    hub = websocket.app.state.hub
    try:
        await authenticate(websocket, READ)
    except ApiError as error:
        await websocket.accept()
        refusal = LiveError(code=error.code, message=error.message, fatal=True)
        with contextlib.suppress(Exception):
            await websocket.send_text(refusal.model_dump_json())
            await websocket.close(code=1008)
        return
    await websocket.accept()
    channel = LiveChannel(
        websocket,
        feeds=hub.job_feeds,
        lab=hub.lab_watch,
    )
    await channel.serve()
