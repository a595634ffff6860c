"""Open the store: SQLite (one file, WAL) by default, PostgreSQL by URL; migrate at start."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from testfleet.store.migrate import upgrade_to_head

SQLITE_FILE = "testfleet.db"
_SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=30000",
)


class StoreUrlError(ValueError):
    """The database URL is not one the store can open."""


def normalize_url(url: str) -> str:
    """Map `sqlite:///f.db` and `postgresql://...` to their async drivers; reject the rest."""
    try:
        parsed = make_url(url)
    except ArgumentError as error:
        raise StoreUrlError(f"{url!r} is not a database URL: {error}") from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return parsed.set(drivername="sqlite+aiosqlite").render_as_string(hide_password=False)
    if backend in ("postgresql", "postgres"):
        return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
    raise StoreUrlError(
        f"unsupported database {backend!r} in {url!r}: use sqlite:///PATH or postgresql://..."
    )


def sqlite_url(data_dir: Path) -> str:
    """The URL of the default store file in `data_dir`."""
    return f"sqlite+aiosqlite:///{data_dir / SQLITE_FILE}"


class Store:
    """The engines of one database; `read()` and `write()` hand out transactions."""

    def __init__(self, url: str) -> None:
        self.url = normalize_url(url)
        self.is_sqlite = self.url.startswith("sqlite")
        self.is_postgres = not self.is_sqlite
        if self.is_sqlite:
            # One writer connection whose transactions begin IMMEDIATE: writes queue in the
            # pool instead of failing with "database is locked"; readers run beside it (WAL).
            self._writer = self._sqlite_engine(begin="BEGIN IMMEDIATE", pool_size=1)
            self._reader = self._sqlite_engine(begin="BEGIN", pool_size=4)
        else:
            self._writer = create_async_engine(
                self.url, pool_size=10, max_overflow=10, pool_pre_ping=True
            )
            self._reader = self._writer

    def _sqlite_engine(self, *, begin: str, pool_size: int) -> AsyncEngine:
        path = make_url(self.url).database
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(self.url, pool_size=pool_size, max_overflow=0, pool_timeout=60)

        @event.listens_for(engine.sync_engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
            cursor = dbapi_connection.cursor()
            for pragma in _SQLITE_PRAGMAS:
                cursor.execute(pragma)
            cursor.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _on_begin(connection: Any) -> None:
            connection.exec_driver_sql(begin)

        return engine

    @classmethod
    async def open(cls, url: str, *, migrate: bool = True) -> Store:
        """Open the store at `url`, bringing its schema up to date unless told not to."""
        store = cls(url)
        if migrate:
            try:
                await store.migrate()
            except BaseException:
                await store.close()
                raise
        return store

    async def migrate(self) -> None:
        """Apply every Alembic migration not yet applied."""
        async with self._writer.begin() as connection:
            await connection.run_sync(upgrade_to_head)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A read-only transaction."""
        async with self._reader.connect() as connection, connection.begin():
            yield connection

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A read-write transaction, committed when the block ends without an exception."""
        async with self._writer.begin() as connection:
            yield connection

    async def ping(self) -> None:
        """Raise if the database cannot be reached."""
        from sqlalchemy import text

        async with self.read() as connection:
            await connection.execute(text("SELECT 1"))

    async def close(self) -> None:
        """Close every connection."""
        await self._writer.dispose()
        if self._reader is not self._writer:
            await self._reader.dispose()
