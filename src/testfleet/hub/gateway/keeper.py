"""The gateway's housekeeping, on every hub (the store decides which hub takes what):
idle sessions ended on their node and then freed; sessions of lost agents marked lost;
lost sessions cleaned up on their node once it is back, then freed; abandoned requests
failed."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

from testfleet.hub.gateway.proxy import NodeClient, NodeUnreachable
from testfleet.hub.gateway.sessions import SessionEnder, SessionRoutes
from testfleet.protocol.wire import utcnow
from testfleet.store import driver_sessions as session_store
from testfleet.store.db import Store
from testfleet.store.records import DriverSessionRecord

_log = logging.getLogger(__name__)
TICK = 1.0
PRUNE_EVERY = 600.0
"""Seconds between looks for session history past its keeping time."""


class SessionKeeper:
    """Looks at the sessions every `TICK` seconds."""

    def __init__(
        self,
        *,
        store: Store,
        nodes: NodeClient,
        routes: SessionRoutes,
        ender: SessionEnder,
        abandon_after: float,
        keep_history: float,
    ) -> None:
        self._store = store
        self._nodes = nodes
        self._routes = routes
        self._ender = ender
        self._abandon_after = abandon_after
        self._keep_history = keep_history
        self._pruned_at = -PRUNE_EVERY

    async def run(self) -> None:
        """Until cancelled."""
        while True:
            await asyncio.sleep(TICK)
            try:
                await self.look()
            except Exception:
                _log.exception("looking after gateway sessions failed; trying again")

    async def look(self) -> None:
        """One pass."""
        now = utcnow()
        for record in await self._store.write(session_store.take_idle, now):
            reason = f"idle for more than {record.idle_timeout} s (newCommandTimeout)"
            _log.info("session %s: %s", record.session_id, reason)
            await self._ender.end(record, reason)
        lost = await self._store.write(session_store.lose_sessions_of_offline_agents)
        if lost:
            _log.warning("%d session(s) lost with their agent", len(lost))
            self._routes.forget_rows(set(lost))
        for record in await self._store.read(session_store.lost_sessions_back_online):
            await self._clean_up(record)
        before = now - timedelta(seconds=self._abandon_after)
        if await self._store.write(session_store.take_stale_requests, before):
            self._freed()
        await self.prune()

    async def prune(self, force: bool = False) -> int:
        """Forget sessions ended longer ago than the history is kept (every PRUNE_EVERY s)."""
        clock = asyncio.get_running_loop().time()
        if not force and clock - self._pruned_at < PRUNE_EVERY:
            return 0
        self._pruned_at = clock
        cutoff = utcnow() - timedelta(seconds=self._keep_history)
        pruned = 0
        while count := await self._store.write(session_store.prune_history, cutoff):
            pruned += count
        if pruned:
            _log.info("forgot %d session(s) ended before %s", pruned, cutoff.isoformat())
        return pruned

    async def _clean_up(self, record: DriverSessionRecord) -> None:
        """A lost session's agent is back: end its driver session (if the node still has
        it), then free the device."""
        if record.session_id is not None and record.node_url is not None:
            url = f"{record.node_url.rstrip('/')}/session/{record.session_id}"
            with contextlib.suppress(NodeUnreachable):
                await self._nodes.call("DELETE", url, within=10)
        reason = (record.end_reason or "lost") + "; its device was freed when its agent came back"
        if await self._store.write(
            session_store.finish, record.id, reason, utcnow(), only_from=(session_store.LOST,)
        ):
            self._freed()

    def _freed(self) -> None:
        for callback in self._ender.on_freed:
            callback()
