"""Store tests run on SQLite and on PostgreSQL, each test on an empty database of its own.

PostgreSQL: the server is `$TESTFLEET_TEST_POSTGRES` (default below); every test gets a fresh
database `tf_test_<random>`, dropped afterwards. An unreachable server skips the PostgreSQL
tests, except under `CI=true`, where it fails them: CI must run them.

Tests are coroutines run by anyio's pytest plugin (`@pytest.mark.anyio`) on asyncio.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from testfleet.store import Store

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/test"
CONNECT_TIMEOUT = 5.0

# A failed connection is remembered, so an absent server costs one timeout, not one per test.
_unreachable: dict[str, str] = {}


def postgres_server() -> str:
    """The PostgreSQL server the store tests use."""
    return os.environ.get("TESTFLEET_TEST_POSTGRES", DEFAULT_SERVER)


def database_url(server: str, name: str) -> str:
    """`server` with its database replaced by `name`."""
    return server.rsplit("/", 1)[0] + f"/{name}"


async def _admin(server: str, sql: str) -> None:
    """Run one statement on the server's default database."""
    connection = await asyncpg.connect(server, timeout=CONNECT_TIMEOUT)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


def _create_or_give_up(server: str, name: str) -> None:
    """Create database `name`; skip (or fail under CI) when the server cannot be reached."""
    reason = _unreachable.get(server)
    if reason is None:
        try:
            asyncio.run(_admin(server, f'CREATE DATABASE "{name}"'))
            return
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            problem = f"{type(error).__name__}: {error}"
            reason = f"PostgreSQL at {server} is unreachable or unusable: {problem}"
            _unreachable[server] = reason
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: the PostgreSQL store tests must run, never skip)")
    pytest.skip(reason)


@pytest.fixture
def anyio_backend() -> str:
    """Run the async tests on asyncio (the hub's loop)."""
    return "asyncio"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database of each kind."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    server = postgres_server()
    name = f"tf_test_{uuid.uuid4().hex[:12]}"
    _create_or_give_up(server, name)
    try:
        yield database_url(server, name)
    finally:
        asyncio.run(_admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[Store]:
    """The store on `db_url`, migrated to head; closed after the test."""
    opened = await Store.open(db_url)
    try:
        yield opened
    finally:
        await opened.close()
