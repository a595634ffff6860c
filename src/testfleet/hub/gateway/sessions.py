"""Gateway sessions: created on a matched device, routed from the store's map, ended on the
node before their device is freed.

The map session -> device -> node lives in the store (`driver_sessions`), so a restarted hub
and every other hub route every live session; this hub keeps a cache of the routes it used,
checked against the store every `RECHECK` seconds (a session killed or lost elsewhere).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from starlette.types import Receive

from testfleet.hub.gateway.activity import CommandLog
from testfleet.hub.gateway.proxy import NodeClient, NodeUnreachable
from testfleet.hub.gateway.w3c import W3CError
from testfleet.protocol.wire import utcnow
from testfleet.store import driver_sessions as session_store
from testfleet.store.db import Store
from testfleet.store.records import DriverSessionRecord

_log = logging.getLogger(__name__)
RECHECK = 2.0
"""Seconds a cached route is trusted before the store is asked again."""
SCREENSHOT_TIMEOUT = 5.0
DELETE_TIMEOUT = 30.0


@dataclass
class Route:
    """Where a live session's commands go."""

    row_id: int
    session_id: str
    node_url: str
    idle_timeout: int
    screenshot: bool
    checked: float

    @property
    def base(self) -> str:
        """The session's URL on its node."""
        return f"{self.node_url}/session/{self.session_id}"


def wants_screenshot(record: DriverSessionRecord) -> bool:
    """Browser sessions get a final screenshot unless the client said `tf:screenshot: false`."""
    if not record.browser:
        return False
    always = record.requested.get("alwaysMatch")
    return not (isinstance(always, dict) and always.get("tf:screenshot") is False)


def route_of(record: DriverSessionRecord) -> Route:
    """The route of a live session record."""
    assert record.session_id is not None and record.node_url is not None
    return Route(
        row_id=record.id,
        session_id=record.session_id,
        node_url=record.node_url.rstrip("/"),
        idle_timeout=record.idle_timeout,
        screenshot=wants_screenshot(record),
        checked=time.monotonic(),
    )


def gone(session_id: str, record: DriverSessionRecord | None) -> W3CError:
    """The `invalid session id` answer, saying what became of the session."""
    if record is None:
        return W3CError("invalid session id", f"no session {session_id} is known to testfleet")
    why = f": {record.end_reason}" if record.end_reason else ""
    return W3CError("invalid session id", f"session {session_id} is {record.state}{why}")


class SessionRoutes:
    """The routes of live sessions, cached in front of the store."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._routes: dict[str, Route] = {}

    async def get(self, session_id: str) -> Route:
        """The live session's route; W3CError `invalid session id` otherwise."""
        route = self._routes.get(session_id)
        if route is not None and time.monotonic() - route.checked < RECHECK:
            return route
        record = await self._store.read(session_store.by_session_id, session_id)
        if record is None or record.state != session_store.ACTIVE:
            self._routes.pop(session_id, None)
            raise gone(session_id, record)
        route = self._routes[session_id] = route_of(record)
        return route

    def add(self, route: Route) -> None:
        """A session created here."""
        self._routes[route.session_id] = route

    def forget(self, session_id: str | None) -> None:
        """A session ended or lost."""
        if session_id is not None:
            self._routes.pop(session_id, None)

    def forget_rows(self, row_ids: set[int]) -> None:
        """Sessions ended or lost elsewhere (by row id)."""
        for route in list(self._routes.values()):
            if route.row_id in row_ids:
                del self._routes[route.session_id]


class SessionEnder:
    """Ends driver sessions on their node, then frees their device: never the other way round."""

    def __init__(
        self, store: Store, nodes: NodeClient, routes: SessionRoutes, log: CommandLog
    ) -> None:
        self._store = store
        self._nodes = nodes
        self._routes = routes
        self._log = log
        self.on_freed: list[Callable[[], None]] = []
        """Called after a session's device is freed (wake the queues)."""

    async def end(self, record: DriverSessionRecord, reason: str) -> tuple[int, bytes] | None:
        """End a session taken into `ending`: final screenshot, driver DELETE, device freed.

        Returns the node's answer to the DELETE, or None when the node could not be reached
        (the session is then `lost` and keeps its device until the node is back).
        """
        self._routes.forget(record.session_id)
        assert record.session_id is not None and record.node_url is not None
        base = f"{record.node_url.rstrip('/')}/session/{record.session_id}"
        if wants_screenshot(record):
            await self._screenshot(record.id, base)
        try:
            answer = await self._nodes.call("DELETE", base, within=DELETE_TIMEOUT)
        except NodeUnreachable as error:
            _log.warning("session %s: cannot end it on its node: %s", record.session_id, error)
            await self._store.write(
                session_store.mark_lost, record.id, f"{reason}; its node was unreachable"
            )
            return None
        await self._store.write(
            session_store.finish, record.id, reason, utcnow(), only_from=(session_store.ENDING,)
        )
        for callback in self.on_freed:
            callback()
        return answer

    async def _screenshot(self, row_id: int, base: str) -> None:
        try:
            status, body = await self._nodes.call(
                "GET", f"{base}/screenshot", within=SCREENSHOT_TIMEOUT
            )
            if status != 200:
                return
            png = base64.b64decode(json.loads(body)["value"], validate=True)
        except (NodeUnreachable, ValueError, KeyError, TypeError, binascii.Error) as error:
            _log.info("no final screenshot of session row %d: %s", row_id, error)
            return
        await self._store.write(session_store.save_screenshot, row_id, png, utcnow())

    async def kill(self, record: DriverSessionRecord, by: str) -> DriverSessionRecord | None:
        """End a session on request (the sessions API): a queued one fails, one being created
        is ended by its creator, a live one is ended on its node now. Returns the session as
        it is afterwards, or None if it was already over."""
        reason = f"killed by {by}"
        now = utcnow()
        if record.state == session_store.QUEUED:
            await self._store.write(
                session_store.finish,
                record.id,
                reason,
                now,
                state=session_store.FAILED,
                only_from=(session_store.QUEUED,),
            )
        elif record.state == session_store.CREATING:
            await self._store.write(
                session_store.begin_ending, record.id, only_from=(session_store.CREATING,)
            )
        elif record.state == session_store.ACTIVE:
            taken = await self._store.write(session_store.begin_ending, record.id)
            if taken is not None:
                await self.end(taken, reason)
        elif record.state == session_store.LOST:
            await self._store.write(session_store.finish, record.id, reason, now)
            for callback in self.on_freed:
                callback()
        else:
            return None
        return await self._store.read(session_store.get, record.id)


async def wait_disconnect(receive: Receive) -> None:
    """Return when the client of an ASGI request (whose body has been read) goes away."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


def still_queued_watch(store: Store, row_id: int) -> asyncio.Task[None]:
    """A task that ends when the queued session is no longer queued (killed through the API,
    perhaps on another hub)."""

    async def watch() -> None:
        while True:
            await asyncio.sleep(1.0)
            record = await store.read(session_store.get, row_id)
            if record is None or record.state != session_store.QUEUED:
                return

    return asyncio.create_task(watch(), name=f"session-{row_id}-watch")
