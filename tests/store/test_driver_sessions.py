"""Gateway sessions in the store, on SQLite and PostgreSQL: one claimer wins a device, a
session's end frees it in the same transaction, lost sessions keep it, idle ones are taken
by one hub only."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import Connection

from testfleet.protocol.states import DeviceState
from testfleet.store import Store
from testfleet.store import agents as agent_store
from testfleet.store import devices as device_store
from testfleet.store import driver_sessions as sessions
from tests.store.helpers import NOW, add_agent, devices_by_id, other_hubs

pytestmark = pytest.mark.anyio
DEVICE = "a1:slot-0"


def request(conn: Connection, idle: int = 60) -> int:
    return sessions.open_request(
        conn, requestor="me", requested={}, priority=0, idle_timeout=idle, hub="h", now=NOW
    )


async def active_session(store: Store, sid: str = "s1", idle: int = 60) -> int:
    row = await store.write(request, idle)
    assert await store.write(sessions.claim_device, row, DEVICE, NOW)
    assert await store.write(sessions.activate, row, sid, {"browserName": "x"}, NOW)
    return row


async def test_of_many_hubs_claiming_one_device_exactly_one_wins(store: Store, db_url: str) -> None:
    await store.write(add_agent, "a1", 1)
    rows = [await store.write(request) for _ in range(8)]
    async with other_hubs(db_url, len(rows)) as hubs:
        won = await asyncio.gather(
            *(
                hub.write(sessions.claim_device, row, DEVICE, NOW)
                for hub, row in zip(hubs, rows, strict=True)
            )
        )
    assert sum(won) == 1
    winner = rows[won.index(True)]
    device = (await store.read(devices_by_id))[DEVICE]
    assert (device.state, device.holder_session_id, device.holder_job_id) == (
        DeviceState.BUSY,
        winner,
        None,
    )
    record = await store.read(sessions.get, winner)
    assert record is not None and record.state == sessions.CREATING and record.device_id == DEVICE


async def test_ending_a_session_frees_its_device_once(store: Store) -> None:
    await store.write(add_agent, "a1", 1)
    row = await active_session(store)
    found = await store.read(sessions.by_session_id, "s1")
    assert (
        found is not None
        and found.id == row
        and found.idle_expires_at == NOW + timedelta(seconds=60)
    )
    assert await store.write(sessions.finish, row, "done", NOW)
    assert not await store.write(sessions.finish, row, "again", NOW)
    device = (await store.read(devices_by_id))[DEVICE]
    assert (device.state, device.holder_session_id) == (DeviceState.FREE, None)
    record = await store.read(sessions.get, row)
    assert record is not None and (record.state, record.end_reason) == ("ended", "done")


async def test_a_given_up_request_takes_no_device(store: Store) -> None:
    await store.write(add_agent, "a1", 1)
    row = await store.write(request)
    await store.write(sessions.finish, row, "left", NOW, state=sessions.FAILED)
    assert not await store.write(sessions.claim_device, row, DEVICE, NOW)
    assert (await store.read(devices_by_id))[DEVICE].state == DeviceState.FREE


async def test_a_lost_agents_session_keeps_its_device_until_the_agent_is_back(store: Store) -> None:
    agent_id = await store.write(add_agent, "a1", 1)
    row = await active_session(store)
    await store.write(agent_store.set_agent_offline, agent_id)
    await store.write(device_store.set_devices_offline, agent_id)
    assert await store.write(sessions.lose_sessions_of_offline_agents) == [row]
    assert await store.read(sessions.lost_sessions_back_online) == []
    await store.write(add_agent, "a1", 1)  # it registers again: its device is still held
    assert (await store.read(devices_by_id))[DEVICE].state == DeviceState.BUSY
    (back,) = await store.read(sessions.lost_sessions_back_online)
    assert back.id == row
    assert await store.write(sessions.finish, row, "cleaned", NOW, only_from=(sessions.LOST,))
    assert (await store.read(devices_by_id))[DEVICE].state == DeviceState.FREE


async def test_idle_sessions_are_taken_once_and_activity_moves_the_deadline(store: Store) -> None:
    await store.write(add_agent, "a1", 2)
    row = await active_session(store, "s1", idle=10)
    later = NOW + timedelta(seconds=5)
    activity = [sessions.Activity(row, later, 3, 10)]
    command = {
        "session_id": row,
        "at": later,
        "method": "GET",
        "command": "GET /title",
        "status": 200,
        "error": None,
        "duration_ms": 1.5,
    }
    await store.write(sessions.record_activity, activity, [command])
    assert await store.write(sessions.take_idle, NOW + timedelta(seconds=12)) == []
    (taken,) = await store.write(sessions.take_idle, NOW + timedelta(seconds=16))
    assert taken.id == row and taken.state == sessions.ENDING and taken.commands == 3
    assert await store.write(sessions.take_idle, NOW + timedelta(seconds=16)) == []
    (stored,) = await store.read(sessions.commands_of, row)
    assert (stored.command, stored.status, stored.duration_ms) == ("GET /title", 200, 1.5)


async def test_pruning_forgets_only_sessions_over_before_the_cutoff(store: Store) -> None:
    await store.write(add_agent, "a1", 2)
    old = await active_session(store, "old")
    command = {
        "session_id": old,
        "at": NOW,
        "method": "GET",
        "command": "GET /",
        "status": 200,
        "error": None,
        "duration_ms": 1.0,
    }
    await store.write(sessions.record_activity, [], [command])
    await store.write(sessions.save_screenshot, old, b"png", NOW)
    await store.write(sessions.finish, old, "done", NOW)
    live = await store.write(request)
    assert await store.write(sessions.prune_history, NOW) == 0
    assert await store.write(sessions.prune_history, NOW + timedelta(seconds=1)) == 1
    assert await store.read(sessions.get, old) is None
    assert await store.read(sessions.commands_of, old) == []
    assert await store.read(sessions.screenshot, old) is None
    assert await store.read(sessions.get, live) is not None
