"""The hub's relay on a real store: handlers get their kinds in order, each hub reads the
notifications addressed to it (and broadcast ones) only, an unknown hub means every hub;
SQLite sends nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import pytest
from sqlalchemy import Connection, update

from testfleet.hub.metrics import HubMetrics
from testfleet.hub.relay import EVERY_HUB, Relay
from testfleet.store import Store
from testfleet.store import tasks as task_store
from testfleet.store.addresses import agent_of_task, hub, runner_of_job
from testfleet.store.tables import agents
from tests.store.helpers import NOW, add_agent, add_job, drop_connections, set_running
from tests.support.inproc import eventually

pytestmark = pytest.mark.anyio
Heard = list[tuple[str, int]]


@asynccontextmanager
async def listening(store: Store, server_id: str, kinds: tuple[str, ...]) -> AsyncIterator[Heard]:
    """A relay of hub `server_id` running, its listener connected; what it hears, in order."""
    relay = Relay(store, HubMetrics(), server_id)
    heard: Heard = []
    connected = asyncio.Event()

    async def connect() -> None:
        connected.set()

    for kind in kinds:

        async def handler(row_id: int, kind: str = kind) -> bool:
            heard.append((kind, row_id))
            return True

        relay.handle(kind, handler)
    relay.on_connect(connect)
    running = asyncio.create_task(relay.run())
    try:
        await asyncio.wait_for(connected.wait(), 10)
        yield heard
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)


def skip_on_sqlite(store: Store) -> None:
    if store.is_sqlite:
        pytest.skip("one hub per SQLite store: nothing to relay")


async def test_handlers_get_the_notifications_of_their_kind_in_order(store: Store) -> None:
    skip_on_sqlite(store)
    sender = Relay(store, HubMetrics(), "hub-a")
    async with listening(store, "hub-b", ("task", "job")) as heard:
        for kind, row_id in [("task", 1), ("unknown", 5), ("job", 2), ("task", 3)]:
            await sender.publish(kind, row_id, to=hub("hub-b"))
        await eventually(lambda: len(heard) == 3, "three notifications")
    assert heard == [("task", 1), ("job", 2), ("task", 3)]


def task_on_agent_of(conn: Connection, agent_hub: str | None, owner: str | None) -> tuple[int, int]:
    """A job `owner` runs (None: still queued) with a pending task on an agent connected to
    `agent_hub` (None: the store knows no hub for it): (job, task)."""
    agent_id = add_agent(conn)
    conn.execute(update(agents).where(agents.c.id == agent_id).values(hub=agent_hub))
    job_id = add_job(conn)
    if owner is not None:
        set_running(conn, job_id, owner, NOW + timedelta(minutes=5))
    new = task_store.NewTask("a1/slot-0", "slot-0", agent_id, [("one", "echo")])
    return job_id, task_store.create_tasks(conn, job_id, 1, 0, 1, [new])[0].id


async def test_a_hub_reads_only_what_is_addressed_to_it_or_to_every_hub(store: Store) -> None:
    skip_on_sqlite(store)
    job_id, task_id = await store.write(task_on_agent_of, "hub-b", "hub-a")
    metrics = HubMetrics()
    sender = Relay(store, metrics, "hub-a")
    kinds = ("task", "job", "freed")
    async with (
        listening(store, "hub-a", kinds) as heard_a,
        listening(store, "hub-b", kinds) as heard_b,
    ):
        await sender.publish("task", task_id, to=agent_of_task)  # its agent is on B
        await sender.publish("job", job_id, to=runner_of_job)  # A runs it
        await store.write(sender.announce, "task", task_id, to=agent_of_task)  # in a transaction
        await sender.publish("freed", 0, to=EVERY_HUB)
        await eventually(lambda: len(heard_a) == 2 and len(heard_b) == 3, "the notifications")
        await asyncio.sleep(0.2)  # nothing more comes
    assert heard_a == [("job", job_id), ("freed", 0)]
    assert heard_b == [("task", task_id), ("task", task_id), ("freed", 0)]
    sent = metrics.registry.get_sample_value
    labels = {"direction": "sent", "kind": "task", "channel": "hub"}
    assert sent("testfleet_hub_notifications_total", labels) == 1  # announce counts nothing
    labels = {"direction": "sent", "kind": "freed", "channel": "broadcast"}
    assert sent("testfleet_hub_notifications_total", labels) == 1


async def test_where_the_store_knows_no_hub_every_hub_is_told(store: Store) -> None:
    skip_on_sqlite(store)
    job_id, task_id = await store.write(task_on_agent_of, None, None)
    sender = Relay(store, HubMetrics(), "hub-a")
    async with (
        listening(store, "hub-a", ("task", "job")) as heard_a,
        listening(store, "hub-b", ("task", "job")) as heard_b,
    ):
        await sender.publish("task", task_id, to=agent_of_task)  # agent of no hub
        await sender.publish("job", job_id, to=runner_of_job)  # job of no hub
        await sender.publish("task_stop", 999_999, to=agent_of_task)  # no such task
        await eventually(lambda: len(heard_a) == len(heard_b) == 2, "the notifications")
    assert heard_a == heard_b == [("task", task_id), ("job", job_id)]


async def test_received_notifications_are_counted_by_channel_and_unneeded_ones_apart(
    store: Store,
) -> None:
    skip_on_sqlite(store)
    metrics = HubMetrics()
    receiver = Relay(store, metrics, "hub-b")
    acted: list[int] = []

    async def handler(row_id: int) -> bool:
        acted.append(row_id)
        return row_id != 2  # row 2 concerned nothing here

    receiver.handle("job", handler)
    connected = asyncio.Event()

    async def connect() -> None:
        connected.set()

    receiver.on_connect(connect)
    running = asyncio.create_task(receiver.run())
    try:
        await asyncio.wait_for(connected.wait(), 10)
        sender = Relay(store, HubMetrics(), "hub-a")
        await sender.publish("job", 1, to=hub("hub-b"))
        await sender.publish("job", 2, to=EVERY_HUB)
        await sender.publish("job", 3, to=hub("hub-a"))  # not heard here
        await sender.publish("job", 4, to=hub("hub-b"))
        await eventually(lambda: len(acted) == 3, "three notifications")
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
    value = metrics.registry.get_sample_value
    name = "testfleet_hub_notifications_total"
    assert value(name, {"direction": "received", "kind": "job", "channel": "hub"}) == 2
    assert value(name, {"direction": "received", "kind": "job", "channel": "broadcast"}) == 1
    assert value("testfleet_hub_notifications_unneeded_total", {"kind": "job"}) == 1


async def test_a_relay_whose_listener_reconnects_catches_up_and_hears_both_channels(
    store: Store, db_url: str
) -> None:
    skip_on_sqlite(store)
    relay = Relay(store, HubMetrics(), "hub-b")
    heard: Heard = []
    connects: asyncio.Queue[None] = asyncio.Queue()

    async def catch_up() -> None:  # what the hub's services do: look at the store again
        connects.put_nowait(None)

    async def handler(row_id: int) -> bool:
        heard.append(("job", row_id))
        return True

    relay.handle("job", handler)
    relay.on_connect(catch_up)
    running = asyncio.create_task(relay.run())
    try:
        await asyncio.wait_for(connects.get(), 10)
        await drop_connections(db_url)
        await asyncio.wait_for(connects.get(), 10)  # connected again: caught up
        sender = Relay(store, HubMetrics(), "hub-a")
        await sender.publish("job", 1, to=hub("hub-b"))
        await sender.publish("job", 2, to=EVERY_HUB)
        await eventually(lambda: len(heard) == 2, "both notifications")
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
    assert heard == [("job", 1), ("job", 2)]


async def test_on_sqlite_the_relay_is_off(store: Store) -> None:
    if store.is_postgres:
        pytest.skip("PostgreSQL relays")
    relay = Relay(store, HubMetrics(), "hub-a")
    assert not relay.enabled
    await asyncio.wait_for(relay.run(), 1)  # returns at once
