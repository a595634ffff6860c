"""Device claims are atomic leases: one holder per device, released only by that holder."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest
from sqlalchemy import Connection

from testfleet.protocol.states import DeviceState
from testfleet.store import Store
from testfleet.store import devices as device_store
from testfleet.store.tables import devices
from tests.store.helpers import NOW, add_agent, add_jobs, devices_by_id, other_hubs

pytestmark = pytest.mark.anyio

DEVICES = [f"a1:slot-{i}" for i in range(4)]
CLAIMERS = 20
LEASE = NOW + timedelta(minutes=1)


def claim(conn: Connection, ids: list[str], job_id: int) -> bool:
    """One claimer's transaction: claim `ids` for `job_id` until LEASE."""
    return device_store.claim_devices(conn, ids, job_id, LEASE)


async def test_each_device_goes_to_exactly_one_of_many_concurrent_claimers(
    store: Store, db_url: str
) -> None:
    await store.write(add_agent, "a1", len(DEVICES))
    jobs = await store.write(add_jobs, CLAIMERS)
    wanted = {job: [DEVICES[i % len(DEVICES)]] for i, job in enumerate(jobs)}
    # Every claimer is a hub of its own: its own writer, its own write transaction.
    async with other_hubs(db_url, CLAIMERS) as hubs:
        results = await asyncio.gather(
            *(hub.write(claim, wanted[job], job) for hub, job in zip(hubs, jobs, strict=True))
        )
    won = {job for job, ok in zip(jobs, results, strict=True) if ok}
    devices = await store.read(devices_by_id)
    for device in DEVICES:
        claimers = {job for job in jobs if wanted[job] == [device]}
        winners = claimers & won
        assert len(winners) == 1, f"{device}: {len(winners)} of {len(claimers)} claims won"
        assert devices[device].holder_job_id == winners.pop()
        assert devices[device].state == DeviceState.BUSY
        assert devices[device].lease_expires_at == LEASE


async def test_all_or_nothing_claims_of_the_same_devices_have_one_winner(
    store: Store, db_url: str
) -> None:
    await store.write(add_agent, "a1", len(DEVICES))
    jobs = await store.write(add_jobs, CLAIMERS)
    async with other_hubs(db_url, CLAIMERS) as hubs:
        results = await asyncio.gather(
            *(hub.write(claim, DEVICES, job) for hub, job in zip(hubs, jobs, strict=True))
        )
    assert sum(results) == 1
    winner = jobs[results.index(True)]
    devices = await store.read(devices_by_id)
    assert {devices[d].holder_job_id for d in DEVICES} == {winner}


async def test_a_claim_of_a_busy_device_fails(store: Store) -> None:
    await store.write(add_agent, "a1", 2)
    first, second = await store.write(add_jobs, 2)
    assert await store.write(device_store.claim_devices, ["a1:slot-0"], first, LEASE)
    assert not await store.write(device_store.claim_devices, ["a1:slot-0"], second, LEASE)
    assert (await store.read(devices_by_id))["a1:slot-0"].holder_job_id == first


async def test_a_failed_claim_takes_nothing(store: Store) -> None:
    await store.write(add_agent, "a1", 3)
    first, second = await store.write(add_jobs, 2)
    await store.write(device_store.claim_devices, ["a1:slot-0"], first, LEASE)
    ok = await store.write(device_store.claim_devices, ["a1:slot-0", "a1:slot-1"], second, LEASE)
    assert not ok
    devices = await store.read(devices_by_id)
    assert devices["a1:slot-1"].state == DeviceState.FREE
    assert devices["a1:slot-1"].holder_job_id is None


async def test_release_gives_back_only_what_the_job_holds(store: Store) -> None:
    await store.write(add_agent, "a1", 4)
    holder, other = await store.write(add_jobs, 2)
    await store.write(device_store.claim_devices, DEVICES[:2], holder, LEASE)
    await store.write(device_store.claim_devices, DEVICES[2:3], other, LEASE)

    assert await store.write(device_store.release_devices, DEVICES, other) == 1
    devices = await store.read(devices_by_id)
    assert [devices[d].holder_job_id for d in DEVICES] == [holder, holder, None, None]
    assert [devices[d].state for d in DEVICES] == ["busy", "busy", "free", "free"]

    assert await store.write(device_store.release_devices, DEVICES, other) == 0
    assert await store.write(device_store.release_devices, DEVICES, holder) == 2
    devices = await store.read(devices_by_id)
    assert all(devices[d].state == DeviceState.FREE for d in DEVICES)
    assert all(devices[d].lease_expires_at is None for d in DEVICES)


async def test_a_released_offline_device_stays_offline(store: Store) -> None:
    agent_id = await store.write(add_agent, "a1", 2)
    (job,) = await store.write(add_jobs, 1)
    await store.write(device_store.claim_devices, DEVICES[:2], job, LEASE)
    await store.write(device_store.set_devices_offline, agent_id)

    assert await store.write(device_store.release_devices, DEVICES[:2], job) == 2
    devices = await store.read(devices_by_id)
    assert [devices[d].state for d in DEVICES[:2]] == ["offline", "offline"]
    assert [devices[d].holder_job_id for d in DEVICES[:2]] == [None, None]
    assert {row.id for row in await store.read(device_store.free_devices)} == set()


async def test_expire_leases_frees_only_expired_claims(store: Store) -> None:
    await store.write(add_agent, "a1", 4)
    expired_job, live_job, edge_job = await store.write(add_jobs, 3)
    await store.write(
        device_store.claim_devices, DEVICES[:1], expired_job, NOW - timedelta(seconds=1)
    )
    await store.write(device_store.claim_devices, DEVICES[1:2], live_job, NOW + timedelta(hours=1))
    await store.write(device_store.claim_devices, DEVICES[2:3], edge_job, NOW)

    expired = await store.write(device_store.expire_leases, NOW)

    assert expired == [DEVICES[0]]
    devices = await store.read(devices_by_id)
    assert (devices[DEVICES[0]].state, devices[DEVICES[0]].holder_job_id) == ("free", None)
    assert (devices[DEVICES[1]].state, devices[DEVICES[1]].holder_job_id) == ("busy", live_job)
    assert (devices[DEVICES[2]].state, devices[DEVICES[2]].holder_job_id) == ("busy", edge_job)
    assert devices[DEVICES[3]].state == DeviceState.FREE
    assert await store.write(device_store.expire_leases, NOW) == []


async def test_renewed_leases_do_not_expire(store: Store) -> None:
    await store.write(add_agent, "a1", 1)
    (job,) = await store.write(add_jobs, 1)
    await store.write(device_store.claim_devices, DEVICES[:1], job, NOW + timedelta(seconds=10))
    await store.write(device_store.renew_leases, [job], NOW + timedelta(minutes=10))
    assert await store.write(device_store.expire_leases, NOW + timedelta(minutes=1)) == []
    expired = await store.write(device_store.expire_leases, NOW + timedelta(minutes=11))
    assert expired == DEVICES[:1]


def _stamp(conn: Connection, at: dict[str, datetime]) -> None:
    for device_id, when in at.items():
        conn.execute(devices.update().where(devices.c.id == device_id).values(changed_at=when))


async def _all_pages(store: Store, since: datetime, size: int) -> list[list[str]]:
    pages: list[list[str]] = []
    after = ""
    while page := await store.read(device_store.change_marks, since, after, size):
        pages.append([device_id for device_id, _ in page])
        after = page[-1][0]
    return pages


async def test_change_marks_page_by_id_through_changes_since_a_time(store: Store) -> None:
    await store.write(add_agent, "a1", 7)
    stamps = {f"a1:slot-{n}": NOW + timedelta(seconds=n % 3) for n in range(1, 7)}
    stamps["a1:slot-0"] = NOW - timedelta(seconds=5)  # before the look: never read
    await store.write(_stamp, stamps)

    pages = await _all_pages(store, NOW, 2)
    marks = await store.read(device_store.change_marks, NOW, "", 10)

    changed = [f"a1:slot-{n}" for n in range(1, 7)]
    assert pages == [changed[0:2], changed[2:4], changed[4:6]]
    assert dict(marks) == {device_id: stamps[device_id] for device_id in changed}
    records = await store.read(device_store.devices_with_ids, ["a1:slot-2", "a1:slot-6"])
    assert sorted(record.id for record in records) == ["a1:slot-2", "a1:slot-6"]


async def test_one_statement_changing_more_devices_than_a_page_is_read_in_full(
    store: Store,
) -> None:
    """The store's own clock stamps them all with one instant (milliseconds on SQLite)."""
    await store.write(add_agent, "a1", 7)
    agent_id = (await store.read(devices_by_id))["a1:slot-0"].agent_id
    await store.write(device_store.set_devices_offline, agent_id)

    pages = await _all_pages(store, NOW, 3)

    assert sorted(device_id for page in pages for device_id in page) == [
        f"a1:slot-{n}" for n in range(7)
    ]
