"""The hub's index of devices: matching by what devices offer, least recently used first,
this hub's agents first, stopping at the count asked for."""

from __future__ import annotations

from testfleet.hub.device_index import DeviceIndex
from testfleet.protocol.descriptor import DeviceRequest
from testfleet.protocol.states import DeviceState
from testfleet.store.records import DeviceRecord


def record(name: str, agent: int = 1, **fields: object) -> DeviceRecord:
    values: dict[str, object] = {
        "id": f"a{agent}:{name}",
        "agent_id": agent,
        "name": name,
        "kind": "host",
        "state": DeviceState.FREE,
        "capabilities": {"platformName": "Linux"},
        "labels": {},
        "agent_name": f"a{agent}",
        "agent_labels": {"pool": "a"},
    }
    values.update(fields)
    return DeviceRecord(**values)  # type: ignore[arg-type]


def ids(found: list[DeviceRecord] | None) -> list[str] | None:
    return None if found is None else [d.id for d in found]


def test_requests_match_kind_labels_capabilities_and_names() -> None:
    index = DeviceIndex()
    index.put(record("d1"))
    index.put(record("c1", kind="browser", capabilities={"browserName": "Chrome"}))
    index.put(record("d2", labels={"pool": "b"}))

    assert ids(index.find(DeviceRequest(kind="browser"))) == ["a1:c1"]
    assert ids(index.find(DeviceRequest(capabilities={"browserName": "chrome"}))) == ["a1:c1"]
    assert ids(index.find(DeviceRequest(labels={"pool": "b"}))) == ["a1:d2"]
    assert ids(index.find(DeviceRequest(labels={"pool": "a"}, count=2))) == ["a1:d1", "a1:c1"]
    assert ids(index.find(DeviceRequest(names=["d2"]))) == ["a1:d2"]
    assert ids(index.find(DeviceRequest(names=["a1:d1"]))) == ["a1:d1"]
    assert index.find(DeviceRequest(count=4)) is None
    assert index.find(DeviceRequest(labels={"pool": "z"})) is None


def test_busy_offline_and_removed_devices_are_not_found() -> None:
    index = DeviceIndex()
    for name in ("d1", "d2", "d3"):
        index.put(record(name))
    index.set_state("a1:d1", DeviceState.BUSY, holder=7)
    index.put(record("d2", state=DeviceState.OFFLINE))
    index.put(record("d3", removed=True))

    assert index.find(DeviceRequest()) is None
    assert index.held_by(7) == ["a1:d1"]
    assert index.free_count == 0 and len(index) == 2


def test_given_back_devices_come_last_and_offline_ones_stay_offline() -> None:
    index = DeviceIndex()
    for name in ("d1", "d2", "d3"):
        index.put(record(name))
    index.set_state("a1:d1", DeviceState.BUSY, holder=1)
    index.set_state("a1:d1", DeviceState.FREE, holder=None)
    index.put(record("d3", state=DeviceState.OFFLINE))
    index.set_state("a1:d3", DeviceState.FREE, holder=None)

    assert ids(index.find(DeviceRequest(count=2))) == ["a1:d2", "a1:d1"]  # least recently used
    assert index.get("a1:d3") is not None and index.get("a1:d3").state == "offline"  # type: ignore[union-attr]


def test_avoided_and_taken_devices_and_this_hubs_agents_first() -> None:
    index = DeviceIndex()
    index.put(record("d1", agent=1))
    index.put(record("d2", agent=2))
    index.put(record("d3", agent=2))

    assert ids(index.find(DeviceRequest(), avoid={"a1:d1"})) == ["a2:d2"]
    assert ids(index.find(DeviceRequest(count=3), avoid={"a1:d1"})) == ["a2:d2", "a2:d3", "a1:d1"]
    assert ids(index.find(DeviceRequest(count=2), taken={"a2:d2"})) == ["a1:d1", "a2:d3"]
    local = index.find(DeviceRequest(), local=lambda agent: agent == 2)
    assert ids(local) == ["a2:d2"]


def test_an_agents_devices_are_replaced_as_the_store_has_them() -> None:
    index = DeviceIndex()
    index.put(record("d1"))
    index.put(record("d2"))
    index.replace_agent(1, [record("d2"), record("d9")])

    assert sorted(d.id for d in index.devices()) == ["a1:d2", "a1:d9"]


def test_finding_a_few_of_many_looks_at_a_few() -> None:
    index = DeviceIndex()
    for n in range(20_000):
        index.put(record(f"d{n:05}", agent=n // 4))
    index.put(record("rare", agent=99_999, labels={"gpu": "yes"}))

    assert ids(index.find(DeviceRequest(labels={"gpu": "yes"}))) == ["a99999:rare"]
    assert ids(index.find(DeviceRequest(count=2))) == ["a0:d00000", "a0:d00001"]
