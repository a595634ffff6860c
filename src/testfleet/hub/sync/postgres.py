"""The sync service's state in PostgreSQL, shared by every hub on the store.

A batch of signals or publishes of one name is one transaction (`store/sync_state.py`) whose
commit notifies every hub on channel `testfleet_sync` with `run<TAB>kind<TAB>name<TAB>value`;
a hub with barriers or subscribers for that name moves them on (reading new messages once per
notification, not per subscriber). After its listening connection comes back, a hub reads
what it watches again, so nothing heard late is lost.

The engine has a connection pool of its own, apart from the store's writers: sync traffic
neither waits behind job writes nor slows them, and its commits do not wait for the WAL to
reach the disk (`synchronous_commit = off`): a server crash may forget the last milliseconds
of barriers and topics (as a hub restart forgets them on SQLite), never a job's state.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any, TypeVar

import asyncpg
from sqlalchemy.engine import make_url

from testfleet.hub.sync.engine import Change
from testfleet.protocol.wire import utcnow
from testfleet.store import sync_state
from testfleet.store.db import Store
from testfleet.store.notify import Listener

_log = logging.getLogger(__name__)
POOL = 4
T = TypeVar("T")
ANALYZE_AFTER = 5000
"""Rows this hub adds to a sync table before it refreshes the table's statistics (at most
every ANALYZE_EVERY seconds): without them, a young table's planner finds keys by scanning a
whole topic instead of probing the index (measured: 50,000 messages ran six times slower)."""
ANALYZE_EVERY = 10.0


class PostgresEngine:
    """The state in the store's tables, through a connection pool of its own."""

    shared = True

    def __init__(self, store: Store) -> None:
        self._url = store.url
        self._dsn = make_url(store.url).set(drivername="postgresql").render_as_string(False)
        self._pool: asyncpg.Pool | None = None
        self._opening = asyncio.Lock()
        self._on_change: Change | None = None
        self._on_resync: Callable[[], None] | None = None
        self._added: dict[str, int] = {}
        self._analyzed: dict[str, float] = {}
        self._analyzing: set[asyncio.Task[None]] = set()

    def _count(self, table: str, rows: int) -> None:
        """Refresh `table`'s statistics in the background once enough rows were added."""
        added = self._added[table] = self._added.get(table, 0) + rows
        now = asyncio.get_running_loop().time()
        if added < ANALYZE_AFTER or now - self._analyzed.get(table, -ANALYZE_EVERY) < ANALYZE_EVERY:
            return
        self._added[table] = 0
        self._analyzed[table] = now
        task = asyncio.create_task(self._analyze(table))
        self._analyzing.add(task)
        task.add_done_callback(self._analyzing.discard)

    async def _analyze(self, table: str) -> None:
        try:
            await self._run(lambda conn: conn.execute(f"ANALYZE {table}"))
        except Exception as error:  # statistics are an optimisation: never a failure
            _log.warning("sync: ANALYZE %s failed: %r", table, error)

    async def _connections(self) -> asyncpg.Pool:
        async with self._opening:
            if self._pool is None:
                self._pool = await asyncpg.create_pool(
                    self._dsn,
                    min_size=1,
                    max_size=POOL,
                    server_settings={"synchronous_commit": "off"},
                )
        return self._pool

    async def _run(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """`fn(connection, *args)` on a pooled connection; once more if that connection
        turns out to be dead (nothing was done on it)."""
        pool = await self._connections()
        for attempt in (1, 2):
            try:
                async with pool.acquire() as conn:
                    return await fn(conn, *args)
            except (asyncpg.ConnectionDoesNotExistError, asyncpg.InterfaceError):
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def close(self) -> None:
        """Close the pool."""
        for task in list(self._analyzing):
            task.cancel()
        await asyncio.gather(*self._analyzing, return_exceptions=True)
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def signal(
        self, run: str, state: str, keys: Sequence[str | None]
    ) -> tuple[list[int], int]:
        self._count("sync_entries", len(keys))
        return await self._run(sync_state.signal_entries, run, state, list(keys))

    async def publish(
        self, run: str, topic: str, items: Sequence[tuple[str | None, str]]
    ) -> list[int]:
        self._count("sync_messages", len(items))
        return await self._run(sync_state.publish_messages, run, topic, list(items))

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
        self, url: str, heard: Callable[[str], None], on_connect: Callable[[], Awaitable[None]]
    ) -> None:
        super().__init__(
            url, lambda _kind, _id, _channel: None, on_connect, channels=[sync_state.CHANNEL]
        )
        self._heard = heard

    def _received(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        self._heard(payload)
