"""The sync service of the hub: the engine chosen for the store, the fan-out in front of it,
client connections, views of a run's state, and forgetting runs that are over.

On PostgreSQL the state is shared by every hub on the store (instances of one run may reach
different hubs); on SQLite there is one hub and the state is in its memory.
"""

from __future__ import annotations

import asyncio
import logging

from testfleet.hub.sync.connection import SyncConnection, SyncSocket
from testfleet.hub.sync.core import SyncCore
from testfleet.hub.sync.engine import MemoryEngine, SyncEngine
from testfleet.hub.sync.postgres import PostgresEngine
from testfleet.protocol.plan_api import SyncSnapshot, SyncState, SyncTopic
from testfleet.store.db import Store
from testfleet.store.sync_state import STATE

_log = logging.getLogger(__name__)
IDLE_RUN = 24 * 3600.0
"""A run's sync state unchanged this long is forgotten (finished runs are forgotten at once)."""
UPKEEP = 600.0


def engine_for(store: Store) -> SyncEngine:
    """PostgreSQL's tables when the store is PostgreSQL, else this hub's memory."""
    return PostgresEngine(store) if store.is_postgres else MemoryEngine()


class SyncService:
    """Serves sync clients and answers for runs' sync state."""

    def __init__(self, server_id: str, engine: SyncEngine) -> None:
        self._server_id = server_id
        self.engine = engine
        self.core = SyncCore(engine)
        self.connections = 0

    async def serve(self, socket: SyncSocket, run_id: str) -> None:
        """Serve one client of run `run_id` until it disconnects."""
        self.connections += 1
        try:
            await SyncConnection(socket, run_id, self.core).serve()
        finally:
            self.connections -= 1

    async def snapshot(self, run_id: str) -> SyncSnapshot:
        """A run's states (with the barriers waiting here) and topics."""
        waiting = self.core.waiting(run_id)
        subscribers = self.core.subscribers(run_id)
        states, topics = [], []
        for kind, name, value in await self.engine.counters(run_id):
            if kind == STATE:
                states.append(SyncState(name=name, count=value, waiting=waiting.pop(name, {})))
            else:
                topics.append(
                    SyncTopic(name=name, messages=value, subscribers=subscribers.pop(name, 0))
                )
        states += [SyncState(name=n, count=0, waiting=w) for n, w in sorted(waiting.items())]
        topics += [
            SyncTopic(name=n, messages=0, subscribers=c) for n, c in sorted(subscribers.items())
        ]
        return SyncSnapshot(server_id=self._server_id, run_id=run_id, states=states, topics=topics)

    async def forget(self, run_id: str) -> None:
        """Drop a finished run's state."""
        await self.engine.drop(run_id)

    async def close(self) -> None:
        """Let go of the engine's connections."""
        await self.engine.close()

    async def run(self) -> None:
        """The engine's background work and the expiry of idle runs, until cancelled."""
        async with asyncio.TaskGroup() as group:
            group.create_task(self.engine.run(), name="sync-engine")
            group.create_task(self._upkeep(), name="sync-upkeep")

    async def _upkeep(self) -> None:
        while True:
            await asyncio.sleep(UPKEEP)
            try:
                gone = await self.engine.expire(IDLE_RUN)
            except Exception:
                _log.exception("sync: cannot expire idle runs")
                continue
            if gone:
                _log.info("sync: forgot %d idle run(s)", len(gone))
