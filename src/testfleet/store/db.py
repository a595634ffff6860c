"""Open the store: SQLite (one file, WAL) by default, PostgreSQL by URL; migrate at start.

Work on the store is a plain function of a SQLAlchemy `Connection`, run in one transaction:
`await store.read(fn, ...)` or `await store.write(fn, ...)`.

- On PostgreSQL it runs through the async engine (asyncpg) with `AsyncConnection.run_sync`;
  writes queue to a few writer tasks, each committing what has queued up together
  (`writer.py`). Connections are taken from the pools as they are (a ping on checkout cost
  two round trips): a read or a write batch that meets a connection the server dropped runs
  again on a fresh one, since nothing was done on it. A write whose connection breaks while
  it commits is never run again on a guess (`CommitUnknown`). Reads run in autocommit mode.
- On SQLite the whole transaction runs in a worker thread: one thread hop per transaction
  instead of one per statement (aiosqlite's model), which measured about ten times faster
  for the hub's many short transactions (see docs/performance.md). Writes go through a single
  writer thread whose transactions begin IMMEDIATE, so they queue instead of failing with
  "database is locked", and whatever queued up commits together (`writer.py`); reads run
  beside them (WAL).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import QueuePool

from testfleet.store.migrate import upgrade_to_head
from testfleet.store.writer import POSTGRES_WRITERS, PostgresWriter, SqliteWriter

SQLITE_FILE = "testfleet.db"
SQLITE_READERS = 4
POSTGRES_READERS = 20  # pooled connections kept, as many again opened at peaks
_SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=30000",
)

P = ParamSpec("P")
T = TypeVar("T")
Work = Callable[Concatenate[Connection, P], T]


class StoreUrlError(ValueError):
    """The database URL is not one the store can open."""


def normalize_url(url: str) -> str:
    """Map `sqlite:///f.db` and `postgresql://...` to the drivers we use; reject the rest."""
    try:
        parsed = make_url(url)
    except ArgumentError as error:
        raise StoreUrlError(f"{url!r} is not a database URL: {error}") from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if not parsed.database or parsed.database == ":memory:":
            raise StoreUrlError(f"{url!r}: the store needs a file: sqlite:///PATH")
        return parsed.set(drivername="sqlite").render_as_string(hide_password=False)
    if backend in ("postgresql", "postgres"):
        return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
    raise StoreUrlError(
        f"unsupported database {backend!r} in {url!r}: use sqlite:///PATH or postgresql://..."
    )


def sqlite_url(data_dir: Path) -> str:
    """The URL of the default store file in `data_dir`."""
    return f"sqlite:///{data_dir / SQLITE_FILE}"


def _sqlite_engine(url: str, *, begin: str, pool_size: int) -> Engine:
    engine = create_engine(
        url,
        poolclass=QueuePool,
        pool_size=pool_size,
        max_overflow=0,
        pool_timeout=60,
        connect_args={"check_same_thread": False},
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        for pragma in _SQLITE_PRAGMAS:
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        connection.exec_driver_sql(begin)

    return engine


_MIGRATION_LOCKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)


def _migration_lock() -> asyncio.Lock:
    """This event loop's lock around migrations."""
    loop = asyncio.get_running_loop()
    lock = _MIGRATION_LOCKS.get(loop)
    if lock is None:
        lock = _MIGRATION_LOCKS[loop] = asyncio.Lock()
    return lock


class Store:
    """One database; `read()` and `write()` run a function in a transaction."""

    def __init__(self, url: str) -> None:
        self.url = normalize_url(url)
        self.is_sqlite = self.url.startswith("sqlite")
        self.is_postgres = not self.is_sqlite
        self._async: AsyncEngine | None = None
        self._async_writer: AsyncEngine | None = None
        if self.is_sqlite:
            path = make_url(self.url).database
            assert path is not None
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            self._writer = _sqlite_engine(self.url, begin="BEGIN IMMEDIATE", pool_size=1)
            self._reader = _sqlite_engine(self.url, begin="BEGIN", pool_size=SQLITE_READERS)
            self._group_writer: SqliteWriter | PostgresWriter = SqliteWriter(self._writer)
            self._read_threads = ThreadPoolExecutor(SQLITE_READERS, thread_name_prefix="store-read")
        else:
            # Reads run without BEGIN/COMMIT (two round trips each): at READ COMMITTED every
            # statement sees what was committed when it started, in a transaction or not.
            self._async = create_async_engine(
                self.url,
                pool_size=POSTGRES_READERS,
                max_overflow=POSTGRES_READERS,
                isolation_level="AUTOCOMMIT",
            )
            self._async_writer = create_async_engine(
                self.url, pool_size=POSTGRES_WRITERS, max_overflow=2
            )
            self._group_writer = PostgresWriter(self._async_writer)

    @classmethod
    async def open(cls, url: str, *, migrate: bool = True) -> Store:
        """Open the store at `url`, bringing its schema up to date unless told not to."""
        store = cls(url)
        if migrate:
            try:
                # Alembic's `context` and `op` are module globals: one migration at a time
                # per process (separate hubs queue on a PostgreSQL advisory lock).
                async with _migration_lock():
                    await store.write(upgrade_to_head)
            except BaseException:
                await store.close()
                raise
        return store

    async def read(self, fn: Work[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run `fn(conn, ...)` in a read transaction; returns its result."""
        if self._async is not None:
            try:
                return await self._read_postgres(fn, *args, **kwargs)
            except DBAPIError as error:
                if not error.connection_invalidated:
                    raise
                return await self._read_postgres(fn, *args, **kwargs)
        return await self._in_thread(self._read_threads, self._reader, fn, args, kwargs)

    async def _read_postgres(self, fn: Work[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        assert self._async is not None
        async with self._async.connect() as conn, conn.begin():
            return await conn.run_sync(fn, *args, **kwargs)

    async def write(self, fn: Work[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run `fn(conn, ...)` in a transaction, committed if it returns, rolled back if it
        raises. A caller cancelled before the transaction began writes nothing."""
        request = self._group_writer.submit(fn, args, kwargs)
        try:
            return await asyncio.shield(request.future)
        except asyncio.CancelledError:
            request.abandoned = True
            # Nobody awaits it any more: retrieve its outcome, so that asyncio does not log
            # "Future exception was never retrieved" (Abandoned) at shutdown.
            request.future.add_done_callback(lambda f: f.cancelled() or f.exception())
            raise

    async def _in_thread(
        self, pool: ThreadPoolExecutor, engine: Engine, fn: Work[P, T], args: Any, kwargs: Any
    ) -> T:
        def transaction() -> T:
            with engine.begin() as conn:
                return fn(conn, *args, **kwargs)

        return await asyncio.get_running_loop().run_in_executor(pool, transaction)

    async def ping(self) -> None:
        """Raise if the database cannot be reached."""
        await self.read(lambda conn: conn.execute(text("SELECT 1")).scalar_one())

    async def close(self) -> None:
        """Finish queued writes; close every connection and worker thread."""
        await self._group_writer.close()
        if self._async is not None and self._async_writer is not None:
            await self._async.dispose()
            await self._async_writer.dispose()
            return
        await asyncio.get_running_loop().run_in_executor(None, self._shutdown_sqlite)

    def _shutdown_sqlite(self) -> None:
        self._read_threads.shutdown(wait=True)
        self._writer.dispose()
        self._reader.dispose()
