"""The sync service's state in PostgreSQL, shared by every hub on the store.

The engine has connections of its own, apart from the store's writers: sync traffic neither
waits behind job writes nor slows them, and its commits do not wait for the WAL to reach the
disk (`synchronous_commit = off`): a server crash may forget the last milliseconds of
barriers and topics (as a hub restart forgets them on SQLite), never a job's state.

A batch of signals or publishes of one name is one transaction (`store/sync_state.py`) whose
commit notifies every hub on channel `testfleet_sync` with `run<TAB>kind<TAB>name<TAB>value`;
a hub with barriers or subscribers for that name moves them on (reading new messages once per
notification, not per subscriber). After its listening connection comes back, a hub reads
what it watches again, so nothing heard late is lost.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any, TypeVar

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

from testfleet.hub.sync.engine import Change
from testfleet.protocol.wire import utcnow
from testfleet.store import sync_state
from testfleet.store.db import Store
from testfleet.store.notify import Listener

_log = logging.getLogger(__name__)
POOL = 4
T = TypeVar("T")


class PostgresEngine:
    """The state in the store's tables, through connections of its own."""

    shared = True

    def __init__(self, store: Store) -> None:
        self._url = store.url
        self._engine = create_async_engine(
            store.url,
            pool_size=POOL,
            max_overflow=POOL,
            connect_args={"server_settings": {"synchronous_commit": "off"}},
        )
        self._on_change: Change | None = None
        self._on_resync: Callable[[], None] | None = None

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(conn, *args)` in a transaction; once more on a fresh connection if the pooled
        one turns out to be dead (nothing was done on it)."""
        for attempt in (1, 2):
            try:
                async with self._engine.begin() as conn:
                    return await conn.run_sync(fn, *args)
            except DBAPIError as error:
                if not error.connection_invalidated or attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def close(self) -> None:
        """Close the engine's connections."""
        await self._engine.dispose()

    async def signal(
        self, run: str, state: str, keys: Sequence[str | None]
    ) -> tuple[list[int], int]:
        return await self._run(sync_state.signal_entries, run, state, list(keys), utcnow())

    async def publish(
        self, run: str, topic: str, items: Sequence[tuple[str | None, str]]
    ) -> list[int]:
        return await self._run(sync_state.publish_messages, run, topic, list(items), utcnow())

    async def counter(self, run: str, kind: str, name: str) -> int:
        return await self._run(sync_state.counter, run, kind, name)

    async def read(self, run: str, topic: str, after: int, limit: int) -> list[tuple[int, str]]:
        return await self._run(sync_state.read_messages, run, topic, after, limit)

    def log(self, run: str, topic: str) -> list[tuple[int, str]] | None:
        return None

    async def counters(self, run: str) -> list[tuple[str, str, int]]:
        return await self._run(sync_state.counters_of, run)

    async def drop(self, run: str) -> None:
        await self._run(sync_state.drop_run, run)

    async def expire(self, idle: float) -> list[str]:
        runs = await self._run(sync_state.idle_runs, utcnow() - timedelta(seconds=idle))
        for run in runs:
            await self.drop(run)
        return runs

    def watch(self, on_change: Change, on_resync: Callable[[], None]) -> None:
        self._on_change = on_change
        self._on_resync = on_resync

    async def run(self) -> None:
        """Listen for other hubs' changes until cancelled."""
        listener = _SyncListener(self._url, self._heard, self._connected)
        await listener.run()

    def _heard(self, payload: str) -> None:
        parts = payload.split("\t")
        if len(parts) != 4 or not parts[3].isdigit():
            _log.warning("sync notifications: ignoring %r", payload[:200])
            return
        if self._on_change is not None:
            self._on_change(parts[0], parts[1], parts[2], int(parts[3]))

    async def _connected(self) -> None:
        if self._on_resync is not None:
            self._on_resync()


class _SyncListener(Listener):
    """The store's listener on the sync channel, handing over raw payloads."""

    def __init__(
        self, url: str, heard: Callable[[str], None], on_connect: Callable[[], object]
    ) -> None:
        super().__init__(url, lambda _kind, _id: None, on_connect, channel=sync_state.CHANNEL)  # type: ignore[arg-type]
        self._heard = heard

    def _received(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        self._heard(payload)
