"""`GET /status` in the shape W3C clients and Selenium Grid's tools read: `value.ready`,
`value.message`, and `value.nodes` with each node's slots (its WebDriver devices)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection

from testfleet.protocol.states import DeviceState
from testfleet.store import devices as device_store
from testfleet.store import driver_sessions as session_store
from testfleet.store.db import Store
from testfleet.store.records import DeviceRecord, DriverSessionRecord


def _inventory(conn: Connection) -> tuple[list[DeviceRecord], list[DriverSessionRecord]]:
    devices = [d for d in device_store.list_devices(conn) if d.url]
    live = session_store.list_sessions(
        conn, states=(session_store.ACTIVE, session_store.CREATING), limit=100_000
    )
    return devices, live


class GridStatus:
    """Builds the status document from the store."""

    def __init__(
        self, store: Store, server_id: str, ready: Callable[[], bool], queued: Callable[[], int]
    ) -> None:
        self._store = store
        self._server_id = server_id
        self._ready = ready
        self._queued = queued

    async def document(self) -> bytes:
        """The JSON body of `GET /status`."""
        devices, live = await self._store.read(_inventory)
        by_device = {s.device_id: s for s in live}
        free = sum(1 for d in devices if d.state == DeviceState.FREE)
        online = [d for d in devices if d.state != DeviceState.OFFLINE]
        ready = self._ready() and free > 0
        nodes: dict[str, dict[str, Any]] = {}
        for device in devices:
            node = nodes.setdefault(
                device.agent_name,
                {
                    "id": device.agent_name,
                    "uri": device.url,
                    "availability": "DOWN",
                    "maxSessions": 0,
                    "slots": [],
                },
            )
            node["maxSessions"] += 1
            if device.state != DeviceState.OFFLINE:
                node["availability"] = "UP"
            session = by_device.get(device.id)
            node["slots"].append(
                {
                    "id": {"hostId": device.agent_name, "id": device.id},
                    "stereotype": device.capabilities,
                    "state": device.state.value,
                    "lastStarted": device.last_used_at.isoformat() if device.last_used_at else None,
                    "session": None
                    if session is None
                    else {"sessionId": session.session_id, "capabilities": session.capabilities},
                }
            )
        message = (
            f"testfleet hub {self._server_id}: {free} of {len(online)} online WebDriver "
            f"device(s) free, {len(live)} session(s) live, {self._queued()} request(s) queued here"
        )
        if not self._ready():
            message = f"testfleet hub {self._server_id} is starting or stopping"
        value = {"ready": ready, "message": message, "nodes": list(nodes.values())}
        return json.dumps({"value": value}).encode()
