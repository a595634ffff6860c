"""Why a test waits for devices, in words."""

from __future__ import annotations

import pytest

from testfleet.hub.device_index import DeviceIndex
from testfleet.hub.waiting import explain
from testfleet.protocol.descriptor import DeviceRequest
from testfleet.protocol.states import DeviceState
from testfleet.store.records import DeviceRecord


def device(name: str, state: DeviceState = DeviceState.FREE, **fields: object) -> DeviceRecord:
    values: dict[str, object] = {
        "id": f"a1:{name}",
        "agent_id": 1,
        "name": name,
        "kind": "host",
        "state": state,
        "capabilities": {"platformName": "linux"},
        "labels": {},
        "agent_name": "a1",
        "agent_labels": {"pool": "a"},
    }
    values.update(fields)
    return DeviceRecord(**values)  # type: ignore[arg-type]


def index_of(*devices: DeviceRecord) -> DeviceIndex:
    index = DeviceIndex()
    for record in devices:
        index.put(record)
    return index


INVENTORY = [device("d1"), device("d2", kind="browser", capabilities={"browserName": "chrome"})]


@pytest.mark.parametrize(
    ("want", "reason"),
    [
        (
            {"labels": {"pool": "nope"}},
            "waiting: no device has labels pool=nope (known labels: pool=a)",
        ),
        ({"kind": "phone"}, "waiting: no device is of kind 'phone' (known kinds: browser, host)"),
        (
            {"capabilities": {"browserName": "firefox"}},
            "waiting: no device has capability browserName=firefox "
            "(known: browserName=chrome, platformName=linux)",
        ),
        ({"names": ["x"]}, "waiting: no device is named x (known: a1:d1, a1:d2)"),
        (
            {"kind": "browser", "capabilities": {"platformName": "linux"}},
            "waiting: no device has all of kind browser, capability platformName=linux at once",
        ),
        ({"count": 3}, "waiting: only 2 device(s) match and the test needs 3"),
    ],
)
def test_nothing_could_ever_match(want: dict[str, object], reason: str) -> None:
    assert explain(DeviceRequest.model_validate(want), index_of(*INVENTORY)) == reason


def test_every_matching_device_is_taken() -> None:
    inventory = [device("d1", DeviceState.BUSY), device("d2", DeviceState.OFFLINE)]
    assert explain(DeviceRequest(), index_of(*inventory)) == (
        "waiting: all 2 matching device(s) are taken (1 busy, 1 offline); the test needs 1"
    )


def test_an_empty_lab_says_so() -> None:
    assert explain(DeviceRequest(labels={"pool": "a"}), DeviceIndex()) == (
        "waiting: no device has labels pool=a (known labels: none; no agent offers any device yet)"
    )


def test_a_request_any_device_would_meet_says_there_is_none_yet() -> None:
    assert explain(DeviceRequest(), DeviceIndex()) == "waiting: no device yet; no agent offers any"
