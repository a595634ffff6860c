"""Device allocation: matching by kind, names, labels and capabilities; claims in order."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from testfleet.hub.allocator import NoDeviceCouldMatch
from testfleet.hub.matching import matches
from testfleet.protocol.descriptor import DeviceRequest
from testfleet.protocol.states import DeviceState
from testfleet.protocol.wire import DeviceSpec, utcnow
from testfleet.store import devices as device_store
from testfleet.store import job_ops
from testfleet.store.records import DeviceRecord
from tests.support.inproc import RunningHub, running_hub

pytestmark = pytest.mark.anyio


def device(**fields: object) -> DeviceRecord:
    values: dict[str, object] = {
        "id": "a1:d",
        "agent_id": 1,
        "name": "d",
        "kind": "host",
        "state": DeviceState.FREE,
        "capabilities": {},
        "labels": {},
        "agent_name": "a1",
        "agent_labels": {},
    }
    values.update(fields)
    return DeviceRecord(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("want", "have", "ok"),
    [
        ({}, {}, True),
        ({"kind": "browser"}, {}, False),
        ({"kind": "host"}, {}, True),
        ({"labels": {"pool": "a"}}, {"labels": {"pool": "a"}}, True),
        ({"labels": {"pool": "a"}}, {"agent_labels": {"pool": "a"}}, True),
        (
            {"labels": {"pool": "a"}},
            {"agent_labels": {"pool": "a"}, "labels": {"pool": "b"}},
            False,
        ),
        ({"labels": {"pool": "a"}}, {"labels": {"rack": "a"}}, False),
        (
            {"capabilities": {"platformName": "Linux"}},
            {"capabilities": {"platformName": "linux"}},
            True,
        ),
        (
            {"capabilities": {"browserName": "chrome"}},
            {"capabilities": {"platformName": "linux"}},
            False,
        ),
        ({"capabilities": {"cores": 4}}, {"capabilities": {"cores": 4}}, True),
        ({"capabilities": {"cores": 4}}, {"capabilities": {"cores": "4"}}, False),
        ({"names": ["d"]}, {}, True),
        ({"names": ["a1:d"]}, {}, True),
        ({"names": ["e"]}, {}, False),
    ],
)
def test_matching(want: dict[str, object], have: dict[str, object], ok: bool) -> None:
    assert matches(DeviceRequest.model_validate(want), device(**have)) is ok


async def queued_jobs(hub: RunningHub, count: int) -> list[int]:
    """Jobs that devices can be claimed for (the hub runs none: max_running_jobs=0)."""
    return [
        await hub.hub.store.write(
            job_ops.submit_job,
            name=f"j{n}",
            descriptor={},
            tags=[],
            runs=1,
            requestor="test",
            now=utcnow(),
        )
        for n in range(count)
    ]


def acquire(hub: RunningHub, job_id: int, want: DeviceRequest, avoid: set[str] = set()):  # noqa: B006
    """Claim devices for a job, waiting at most 5 s."""
    return asyncio.wait_for(hub.hub.allocator.acquire(job_id, want, avoid), 5)


async def test_requests_get_matching_devices_and_wait_for_a_free_one(tmp_path: Path) -> None:
    async with running_hub(tmp_path, max_running_jobs=0) as hub:
        j1, j2, j3 = await queued_jobs(hub, 3)
        chrome = DeviceSpec(name="chrome", kind="browser", capabilities={"browserName": "chrome"})
        await hub.agent("a1", slots=1, labels={"pool": "a"}, devices=[chrome])
        await hub.agent("a2", slots=1, labels={"pool": "b"})
        browser = await acquire(hub, j1, DeviceRequest(capabilities={"browserName": "chrome"}))
        in_b = await acquire(hub, j2, DeviceRequest(labels={"pool": "b"}))
        waiting = asyncio.ensure_future(acquire(hub, j3, DeviceRequest(labels={"pool": "b"})))
        await asyncio.sleep(0.2)
        still_waiting = not waiting.done()
        await hub.hub.allocator.release(j2, [d.id for d in in_b])
        then = await waiting

    assert [d.id for d in browser] == ["a1:chrome"]
    assert [d.id for d in in_b] == ["a2:slot-0"]
    assert still_waiting
    assert [d.id for d in then] == ["a2:slot-0"]


async def test_a_device_to_avoid_is_taken_only_when_no_other_matches(tmp_path: Path) -> None:
    async with running_hub(tmp_path, max_running_jobs=0) as hub:
        j1, j2 = await queued_jobs(hub, 2)
        await hub.agent("a1", slots=2)
        other = await acquire(hub, j1, DeviceRequest(), avoid={"a1:slot-0"})
        only = await acquire(hub, j2, DeviceRequest(), avoid={"a1:slot-0"})

    assert [d.id for d in other] == ["a1:slot-1"]
    assert [d.id for d in only] == ["a1:slot-0"]


async def test_a_request_for_several_devices_is_met_all_at_once(tmp_path: Path) -> None:
    async with running_hub(tmp_path, max_running_jobs=0) as hub:
        j1, j2, j3 = await queued_jobs(hub, 3)
        await hub.agent("a1", slots=1)
        await hub.agent("a2", slots=1)
        taken = await acquire(hub, j1, DeviceRequest())
        pair = asyncio.ensure_future(acquire(hub, j2, DeviceRequest(count=2)))
        single = await acquire(hub, j3, DeviceRequest())
        await asyncio.sleep(0.2)
        pair_waits = not pair.done()
        await hub.hub.allocator.release(j1, [d.id for d in taken])
        await hub.hub.allocator.release(j3, [d.id for d in single])
        both = await pair

    assert pair_waits  # one free device is not enough, and a later request may take it
    assert sorted(d.id for d in both) == ["a1:slot-0", "a2:slot-0"]


# ---- gateway sessions: acquire_for_session ----------------------------------------------------


async def session_rows(hub: RunningHub, count: int) -> list[int]:
    """Queued gateway session requests."""
    from testfleet.store import driver_sessions

    return [
        await hub.hub.store.write(
            driver_sessions.open_request,
            requestor="t",
            requested={},
            priority=0,
            idle_timeout=60,
            hub="h",
            now=utcnow(),
        )
        for _ in range(count)
    ]


def browsers(count: int) -> list[DeviceSpec]:
    return [
        DeviceSpec(
            name=f"b{i}", kind="browser", capabilities={"browserName": "chrome"}, url="http://x"
        )
        for i in range(count)
    ]


def chrome(row: DeviceRecord) -> bool:
    return row.capabilities.get("browserName") == "chrome"


async def test_session_requests_are_served_by_priority_then_arrival(tmp_path: Path) -> None:
    from testfleet.store import driver_sessions

    async with running_hub(tmp_path, max_running_jobs=0) as hub:
        await hub.agent("a1", slots=0, devices=browsers(1))
        holder, low, high, low2 = await session_rows(hub, 4)
        allocator = hub.hub.allocator
        first = await asyncio.wait_for(allocator.acquire_for_session(holder, chrome), 5)
        order: list[int] = []

        async def wait(row: int, priority: int) -> None:
            await allocator.acquire_for_session(row, chrome, priority=priority)
            order.append(row)
            await hub.hub.store.write(driver_sessions.finish, row, "done", utcnow())
            allocator.freed()

        waiters = []
        for row, priority in ((low, 0), (high, 9), (low2, 0)):
            waiters.append(asyncio.ensure_future(wait(row, priority)))
            await asyncio.sleep(0.05)
        assert allocator.waiting == 3
        await hub.hub.store.write(driver_sessions.finish, holder, "done", utcnow())
        allocator.freed()
        await asyncio.wait_for(asyncio.gather(*waiters), 5)

    assert first.id == "a1:b0"
    assert order == [high, low, low2]


async def test_a_session_request_no_device_could_match_fails_at_once(tmp_path: Path) -> None:
    async with running_hub(tmp_path, max_running_jobs=0) as hub:
        await hub.agent("a1", slots=1, devices=browsers(2))
        (row,) = await session_rows(hub, 1)
        with pytest.raises(NoDeviceCouldMatch) as raised:
            await hub.hub.allocator.acquire_for_session(
                row, lambda d: d.capabilities.get("browserName") == "firefox"
            )
    assert raised.value.offered == [({"browserName": "chrome"}, 2)]  # host slots have no URL
    assert "2 x {browserName: 'chrome'}" in str(raised.value)


async def test_a_cancelled_session_request_leaves_the_queue(tmp_path: Path) -> None:
    async with running_hub(tmp_path, max_running_jobs=0) as hub:
        await hub.agent("a1", slots=0, devices=browsers(1))
        holder, waiter = await session_rows(hub, 2)
        allocator = hub.hub.allocator
        await allocator.acquire_for_session(holder, chrome)
        waiting = asyncio.ensure_future(allocator.acquire_for_session(waiter, chrome))
        await asyncio.sleep(0.05)
        queued = allocator.waiting
        waiting.cancel()
        await asyncio.gather(waiting, return_exceptions=True)
    assert (queued, allocator.waiting) == (1, 0)


async def test_a_look_at_changes_reads_whole_rows_only_of_changes_it_has_not_seen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with running_hub(tmp_path, max_running_jobs=0) as hub:
        (job,) = await queued_jobs(hub, 1)
        await hub.agent("a1", slots=3)
        allocator, store = hub.hub.allocator, hub.hub.store
        fetched: list[list[str]] = []
        read = store.read

        async def counting_read(fn: Any, *args: Any) -> Any:
            if fn is device_store.devices_with_ids:
                fetched.append(sorted(args[0]))
            return await read(fn, *args)

        monkeypatch.setattr(store, "read", counting_read)
        await allocator._read_changes()
        await allocator._read_changes()  # the same changes, still within the margin
        # Another hub claims a device: only that one is read again, and the index sees it.
        assert await store.write(device_store.claim_devices, ["a1:slot-1"], job, None)
        await allocator._read_changes()
        busy = allocator.index.get("a1:slot-1")

    slots = ["a1:slot-0", "a1:slot-1", "a1:slot-2"]
    assert fetched == [slots, ["a1:slot-1"]]
    assert busy is not None and busy.state == DeviceState.BUSY and busy.holder_job_id == job
