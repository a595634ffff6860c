"""Notifications between hubs: LISTEN/NOTIFY on PostgreSQL, a row id as the payload."""

from __future__ import annotations

import asyncio
import contextlib

import asyncpg
import pytest
from sqlalchemy import Connection, text
from sqlalchemy.engine import make_url

from testfleet.store import Store
from testfleet.store.notify import CHANNEL, Listener, notify, parse
from tests.store.conftest import CONNECT_TIMEOUT, postgres_server

pytestmark = pytest.mark.anyio


def test_payloads_are_a_kind_and_a_row_id() -> None:
    assert parse("task:42") == ("task", 42)
    assert parse("job_stop:7") == ("job_stop", 7)
    for bad in ("", "task", "task:", ":3", "task:-1", "task:4x", "garbage"):
        assert parse(bad) is None, bad


def garbage(conn: Connection) -> None:
    """A notification on the channel that is not a kind and a row id."""
    conn.execute(text("SELECT pg_notify(:c, 'not a row')"), {"c": CHANNEL})


async def test_a_listener_hears_commits_and_comes_back_after_its_connection_drops(
    store: Store, db_url: str
) -> None:
    if store.is_sqlite:
        pytest.skip("one hub per SQLite store: nothing to notify")
    heard: asyncio.Queue[tuple[str, int]] = asyncio.Queue()
    connects: asyncio.Queue[None] = asyncio.Queue()

    async def on_connect() -> None:
        connects.put_nowait(None)

    listener = Listener(store.url, lambda kind, row: heard.put_nowait((kind, row)), on_connect)
    running = asyncio.create_task(listener.run())
    try:
        await asyncio.wait_for(connects.get(), 10)
        await store.write(garbage)
        await store.write(notify, "task", 1)
        assert await asyncio.wait_for(heard.get(), 10) == ("task", 1)  # the garbage is ignored

        admin = await asyncpg.connect(postgres_server(), timeout=CONNECT_TIMEOUT)
        try:
            await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = $1",
                make_url(db_url).database,
            )
        finally:
            await admin.close()
        await asyncio.wait_for(connects.get(), 10)  # connected again
        await store.write(notify, "job", 2)
        assert await asyncio.wait_for(heard.get(), 10) == ("job", 2)
        assert heard.empty()
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
