"""The hub's relay on a real store: handlers get their kinds in order; SQLite sends nothing."""

from __future__ import annotations

import asyncio

import pytest

from testfleet.hub.metrics import HubMetrics
from testfleet.hub.relay import Relay
from testfleet.store import Store
from tests.support.inproc import eventually

pytestmark = pytest.mark.anyio


async def test_handlers_get_the_notifications_of_their_kind_in_order(store: Store) -> None:
    if store.is_sqlite:
        pytest.skip("one hub per SQLite store: nothing to relay")
    sender, receiver = Relay(store, HubMetrics()), Relay(store, HubMetrics())
    heard: list[tuple[str, int]] = []
    connected = asyncio.Event()

    async def connect() -> None:
        connected.set()

    for kind in ("task", "job"):

        async def handler(row_id: int, kind: str = kind) -> None:
            heard.append((kind, row_id))

        receiver.handle(kind, handler)
    receiver.on_connect(connect)
    running = asyncio.create_task(receiver.run())
    try:
        await asyncio.wait_for(connected.wait(), 10)
        for kind, row_id in [("task", 1), ("unknown", 5), ("job", 2), ("task", 3)]:
            await sender.publish(kind, row_id)
        await eventually(lambda: len(heard) == 3, "three notifications")
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)

    assert heard == [("task", 1), ("job", 2), ("task", 3)]


async def test_on_sqlite_the_relay_is_off(store: Store) -> None:
    if store.is_postgres:
        pytest.skip("PostgreSQL relays")
    relay = Relay(store, HubMetrics())
    assert not relay.enabled
    await asyncio.wait_for(relay.run(), 1)  # returns at once
