"""Notifications between hubs: LISTEN/NOTIFY on PostgreSQL, a row id as the payload, on the
channel of the hub concerned or on the broadcast channel."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from sqlalchemy import ColumnElement, Connection, String, literal, select, text

from testfleet.store import Store
from testfleet.store.notify import BROADCAST, Listener, channel_of, hub_channel, notify, parse
from tests.store.helpers import drop_connections

pytestmark = pytest.mark.anyio


def test_payloads_are_a_kind_and_a_row_id() -> None:
    assert parse("task:42") == ("task", 42)
    assert parse("job_stop:7") == ("job_stop", 7)
    for bad in ("", "task", "task:", ":3", "task:-1", "task:4x", "garbage"):
        assert parse(bad) is None, bad


def test_a_hub_channel_is_a_short_identifier_whatever_the_server_id() -> None:
    ids = ["hub-1", "Hub 1", "host.example.com:8080", "é" * 200, "", 'x"; DROP TABLE jobs']
    channels = {hub_channel(i) for i in ids}
    assert len(channels) == len(ids)
    for channel in channels:
        assert channel.isascii() and channel.isidentifier() and channel == channel.lower()
        assert len(channel.encode()) <= 63
        assert channel != BROADCAST


async def test_the_store_addresses_a_hub_on_the_channel_it_listens_on(store: Store) -> None:
    if store.is_sqlite:
        pytest.skip("one hub per SQLite store: nothing to notify")
    for server_id in ["hub-1", "host.example.com:8080", "é" * 200, 'x"; DROP TABLE jobs']:
        computed = await store.read(channel_in_sql, server_id)
        assert computed == hub_channel(server_id), server_id


def channel_in_sql(conn: Connection, server_id: str) -> str:
    """The channel `notify` sends to for hub `server_id`, as the database computes it."""
    return str(conn.execute(select(channel_of(literal(server_id, String)))).scalar_one())


def to_hub(server_id: str) -> ColumnElement[str | None]:
    """The `hub` argument of `notify` for a hub named by the sender."""
    return literal(server_id, String)


def garbage(conn: Connection) -> None:
    """A notification on the channel that is not a kind and a row id."""
    conn.execute(text("SELECT pg_notify(:c, 'not a row')"), {"c": BROADCAST})


async def test_a_listener_hears_commits_and_comes_back_after_its_connection_drops(
    store: Store, db_url: str
) -> None:
    if store.is_sqlite:
        pytest.skip("one hub per SQLite store: nothing to notify")
    heard: asyncio.Queue[tuple[str, int, str]] = asyncio.Queue()
    connects: asyncio.Queue[None] = asyncio.Queue()

    async def on_connect() -> None:
        connects.put_nowait(None)

    own = hub_channel("hub-b")
    listener = Listener(
        store.url,
        lambda kind, row, channel: heard.put_nowait((kind, row, channel)),
        on_connect,
        [own, BROADCAST],
    )
    running = asyncio.create_task(listener.run())
    try:
        await asyncio.wait_for(connects.get(), 10)
        await store.write(garbage)
        await store.write(notify, "task", 1)
        # the garbage is ignored
        assert await asyncio.wait_for(heard.get(), 10) == ("task", 1, BROADCAST)
        await store.write(notify, "task", 2, to_hub("hub-a"))  # not heard: another hub's
        await store.write(notify, "task", 3, to_hub("hub-b"))
        assert await asyncio.wait_for(heard.get(), 10) == ("task", 3, own)

        await drop_connections(db_url)
        await asyncio.wait_for(connects.get(), 10)  # connected again, to both channels
        await store.write(notify, "job", 2)
        assert await asyncio.wait_for(heard.get(), 10) == ("job", 2, BROADCAST)
        await store.write(notify, "job", 4, to_hub("hub-b"))
        assert await asyncio.wait_for(heard.get(), 10) == ("job", 4, own)
        assert heard.empty()
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
