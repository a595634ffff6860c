"""New sessions: the request checked and recorded, a device won in the fair queue, the node's
driver asked, the session recorded live. Every way out frees what was taken."""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass, replace
from typing import Any

from starlette.types import Receive

from testfleet.hub.allocator import DeviceAllocator, NoDeviceCouldMatch
from testfleet.hub.gateway import matching
from testfleet.hub.gateway.activity import CommandLog
from testfleet.hub.gateway.metrics import GatewayMetrics
from testfleet.hub.gateway.proxy import NodeClient, NodeUnreachable
from testfleet.hub.gateway.sessions import (
    SessionEnder,
    SessionRoutes,
    route_of,
    still_queued_watch,
    wait_disconnect,
)
from testfleet.hub.gateway.w3c import NewSession, W3CError, parse_new_session
from testfleet.protocol.wire import utcnow
from testfleet.store import devices as device_store
from testfleet.store import driver_sessions as session_store
from testfleet.store.db import Store
from testfleet.store.records import DeviceRecord, DriverSessionRecord

_LEFT = "the client went away while waiting for a device"


@dataclass(frozen=True)
class Timeouts:
    """The hub's limits for new sessions (seconds)."""

    request: float
    create: float
    idle_default: float
    idle_max: float


class SessionCreator:
    """`POST /session`."""

    def __init__(
        self,
        *,
        store: Store,
        allocator: DeviceAllocator,
        nodes: NodeClient,
        routes: SessionRoutes,
        ender: SessionEnder,
        log: CommandLog,
        timeouts: Timeouts,
        server_id: str,
        metrics: GatewayMetrics,
    ) -> None:
        self._metrics = metrics
        self._store = store
        self._allocator = allocator
        self._nodes = nodes
        self._routes = routes
        self._ender = ender
        self._log = log
        self._timeouts = timeouts
        self._server_id = server_id

    async def create(self, body: bytes, requestor: str, receive: Receive) -> tuple[int, bytes]:
        """Create a session for the request `body`; the W3C answer (status, body)."""
        request = parse_new_session(body)
        placement = request.placement
        idle = placement.idle_timeout or self._timeouts.idle_default
        row_id = await self._store.write(
            session_store.open_request,
            requestor=requestor,
            requested=request.requested,
            priority=placement.priority,
            idle_timeout=max(1, round(min(idle, self._timeouts.idle_max))),
            hub=self._server_id,
            now=utcnow(),
        )
        device = await self._wait_for_device(row_id, request, receive)
        try:
            return await self._start_on(row_id, request, device)
        except asyncio.CancelledError:  # the client left while the node created the session
            await asyncio.shield(self._fail(row_id, _LEFT))
            raise

    async def _wait_for_device(
        self, row_id: int, request: NewSession, receive: Receive
    ) -> DeviceRecord:
        prefer = matching.least_used_first if request.placement.least_used else None
        acquire = asyncio.ensure_future(
            self._allocator.acquire_for_session(
                row_id,
                matching.matcher(request),
                priority=request.placement.priority,
                prefer=prefer,
            )
        )
        left = asyncio.ensure_future(wait_disconnect(receive))
        killed = still_queued_watch(self._store, row_id)
        try:
            done, _ = await asyncio.wait(
                {acquire, left, killed},
                timeout=self._timeouts.request,
                return_when=asyncio.FIRST_COMPLETED,
            )
        except asyncio.CancelledError:  # the server cancelled the request: the client left
            await asyncio.shield(self._fail(row_id, _LEFT))
            raise
        finally:
            for task in (left, killed):
                task.cancel()
            if not acquire.done():
                acquire.cancel()
            await asyncio.gather(acquire, left, killed, return_exceptions=True)
        if acquire in done and not acquire.cancelled():
            error = acquire.exception()
            if error is None:
                granted = acquire.result()
                record = await self._store.read(device_store.get_device, granted.id)
                if record is not None:
                    return record
                await self._fail(row_id, f"device {granted.id} disappeared")
                raise W3CError("session not created", f"device {granted.id} disappeared")
            if isinstance(error, NoDeviceCouldMatch):
                await self._fail(row_id, str(error))
                raise W3CError("session not created", str(error))
            raise error
        if left in done:
            reason = _LEFT
        elif killed in done:
            reason = "killed while waiting for a device"
        else:
            reason = f"no matching device became free within {self._timeouts.request:g} s"
        await self._fail(row_id, reason)
        raise W3CError("session not created", reason)

    async def _start_on(
        self, row_id: int, request: NewSession, device: DeviceRecord
    ) -> tuple[int, bytes]:
        candidate = matching.chosen_candidate(request, device)
        assert candidate is not None and device.url is not None
        capabilities = matching.forwarded_capabilities(candidate, device)
        payload = {"capabilities": {"alwaysMatch": capabilities, "firstMatch": [{}]}}
        node = device.url.rstrip("/")
        try:
            status, body = await self._nodes.call(
                "POST",
                f"{node}/session",
                json.dumps(payload).encode(),
                within=self._timeouts.create,
            )
        except NodeUnreachable as error:
            reason = f"the node of device {device.id} could not be reached: {error}"
            await self._fail(row_id, reason)
            raise W3CError("session not created", reason) from None
        if status >= 300:  # the driver's refusal, passed through as it is
            await self._fail(row_id, f"the driver refused (HTTP {status}): {body[:300]!r}")
            return status, body
        session_id, returned = _created(body)
        if session_id is None:
            await self._fail(row_id, f"the driver's answer names no session: {body[:300]!r}")
            raise W3CError("session not created", "the driver's answer names no sessionId")
        if not await self._store.write(
            session_store.activate, row_id, session_id, returned, utcnow()
        ):
            await self._abandon(row_id, node, session_id)
            raise W3CError("session not created", "the session was killed while being created")
        record = await self._store.read(session_store.get, row_id)
        assert record is not None
        self._metrics.sessions.labels("created").inc()
        route = route_of(record)
        self._routes.add(route)
        self._log.touch(row_id, route.idle_timeout)
        answer = {
            "value": {
                "sessionId": session_id,
                "capabilities": {
                    **returned,
                    "tf:device": device.id,
                    "tf:agent": device.agent_name,
                },
            }
        }
        return 200, json.dumps(answer).encode()

    async def _fail(self, row_id: int, reason: str) -> None:
        self._metrics.sessions.labels("failed").inc()
        await self._store.write(
            session_store.finish, row_id, reason, utcnow(), state=session_store.FAILED
        )
        self._allocator.freed()

    async def _abandon(self, row_id: int, node: str, session_id: str) -> None:
        """Killed (or a duplicate id) while being created: end the driver session first."""
        record = await self._store.read(session_store.get, row_id)
        if record is not None and record.state == session_store.ENDING:
            ending = _with_session(record, session_id, node)
            await self._ender.end(ending, record.end_reason or "killed while being created")
            return
        with contextlib.suppress(NodeUnreachable):
            await self._nodes.call("DELETE", f"{node}/session/{session_id}", within=10)
        await self._fail(row_id, "the driver's session id is already in use")


def _created(body: bytes) -> tuple[str | None, dict[str, Any]]:
    try:
        value = json.loads(body).get("value", {})
    except (ValueError, AttributeError, UnicodeDecodeError):
        return None, {}
    if not isinstance(value, dict):
        return None, {}
    session_id = value.get("sessionId")
    capabilities = value.get("capabilities")
    return (
        session_id if isinstance(session_id, str) and session_id else None,
        capabilities if isinstance(capabilities, dict) else {},
    )


def _with_session(record: DriverSessionRecord, session_id: str, node: str) -> DriverSessionRecord:
    return replace(record, session_id=session_id, node_url=node)
