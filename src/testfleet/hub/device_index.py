"""The hub's index of devices: what each offers, which are free, and free ones by kind, label
and capability, so that matching a request costs what it takes, not the fleet's size.

The store stays the truth: claims are still atomic conditional updates there. The index is a
cache that finds candidates; it is loaded at start (a page at a time), kept fresh by this
hub's own changes (claims, releases, agents registering, devices coming and going), and on
PostgreSQL by a look at what other hubs changed. A candidate found stale (another hub took it)
fails its claim and is read again.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Hashable, Iterable, Iterator
from dataclasses import dataclass, field, replace

from testfleet.hub.matching import matches
from testfleet.protocol.descriptor import DeviceRequest
from testfleet.protocol.states import DeviceState
from testfleet.store.records import DeviceRecord

LOCAL_LOOKAHEAD = 256
"""Matching devices of other hubs' agents passed over while looking for this hub's own."""


def capability_key(value: object) -> Hashable | None:
    """How a capability's value is indexed (strings without case); None: not indexed."""
    if isinstance(value, str):
        return ("s", value.lower())
    if isinstance(value, bool | int | float) or value is None:
        return ("v", value)
    return None


@dataclass(eq=False)
class Entry:
    """One device as the index knows it."""

    record: DeviceRecord
    labels: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        self.labels = {**(self.record.agent_labels or {}), **self.record.labels}

    @property
    def id(self) -> str:
        """The device's id."""
        return self.record.id

    @property
    def free(self) -> bool:
        """Whether it can be claimed (as far as the index knows)."""
        return self.record.state == DeviceState.FREE and not self.record.removed


class DeviceIndex:
    """Every device of the inventory, and the free ones by what they offer."""

    def __init__(self) -> None:
        self._entries: dict[str, Entry] = {}
        self._by_agent: dict[int, set[str]] = {}
        # Free devices, in the order they became free (the least recently used first).
        self._free: dict[str, None] = {}
        self._free_by: dict[Hashable, dict[str, None]] = {}
        self._all_by: dict[Hashable, set[str]] = {}
        self._offered: dict[str, Counter[str]] = {}
        self._held: dict[int, set[str]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def free_count(self) -> int:
        """How many devices are free."""
        return len(self._free)

    def held_by(self, job_id: int) -> list[str]:
        """The devices the index knows job `job_id` holds."""
        return list(self._held.get(job_id, ()))

    def get(self, device_id: str) -> DeviceRecord | None:
        """A device's record, if the index has it."""
        entry = self._entries.get(device_id)
        return entry.record if entry is not None else None

    def devices(self) -> Iterator[DeviceRecord]:
        """Every device (a snapshot, in no particular order)."""
        return iter([entry.record for entry in self._entries.values()])

    def free_devices(self) -> Iterator[DeviceRecord]:
        """The free devices, the least recently freed first (a snapshot)."""
        return iter([self._entries[device_id].record for device_id in self._free])

    def put(self, record: DeviceRecord) -> None:
        """Add a device, or replace what the index knows of it."""
        self._unindex(record.id)
        if record.removed:
            return
        entry = Entry(record)
        self._entries[record.id] = entry
        self._by_agent.setdefault(record.agent_id, set()).add(record.id)
        if record.holder_job_id is not None:
            self._held.setdefault(record.holder_job_id, set()).add(record.id)
        for key in _keys(entry):
            self._all_by.setdefault(key, set()).add(record.id)
        for what, value in _offers(entry):
            self._offered.setdefault(what, Counter())[value] += 1
        if entry.free:
            self._free[record.id] = None
            for key in _keys(entry):
                self._free_by.setdefault(key, {})[record.id] = None

    def replace_agent(self, agent_id: int, records: Iterable[DeviceRecord]) -> None:
        """The agent's devices are now `records` (read from the store)."""
        for device_id in list(self._by_agent.get(agent_id, ())):
            self._unindex(device_id)
        for record in records:
            self.put(record)

    def set_state(self, device_id: str, state: DeviceState, holder: int | None) -> None:
        """A device was claimed (busy, `holder`) or given back (free, unless offline)."""
        entry = self._entries.get(device_id)
        if entry is None:
            return
        if state == DeviceState.FREE and entry.record.state == DeviceState.OFFLINE:
            state = DeviceState.OFFLINE
        self.put(replace(entry.record, state=state, holder_job_id=holder))

    def find(
        self,
        want: DeviceRequest,
        avoid: Collection[str] = (),
        taken: Collection[str] = (),
        local: Callable[[int], bool] | None = None,
    ) -> list[DeviceRecord] | None:
        """`want.count` free devices that match, or None. Devices in `avoid` only when no
        others match, `taken` never; with `local`, devices of agents it says yes to first.

        Looks at the smallest candidate set the request's kind, labels and capabilities
        give, and stops once it has enough."""
        preferred: list[DeviceRecord] = []
        others: list[DeviceRecord] = []
        avoided: list[DeviceRecord] = []
        lookahead = want.count + (LOCAL_LOOKAHEAD if local is not None else 0)
        for device_id in self._candidates(want):
            if device_id in taken:
                continue
            record = self._entries[device_id].record
            if not matches(want, record):
                continue
            if device_id in avoid:
                avoided.append(record)
            elif local is None or local(record.agent_id):
                preferred.append(record)
            else:
                others.append(record)
            if len(preferred) >= want.count:
                break
            if len(preferred) + len(others) >= lookahead:
                break  # enough seen: other hubs' devices make up the rest
        chosen = (preferred + others + avoided)[: want.count]
        return chosen if len(chosen) == want.count else None

    def matching(self, want: DeviceRequest, most: int) -> list[DeviceRecord]:
        """Up to `most` devices in any state that match `want` (the smallest candidate set
        is looked at, and no more than needed)."""
        sets: list[Collection[str]] = []
        if want.kind is not None:
            sets.append(self._all_by.get(("kind", want.kind), set()))
        for key, value in want.labels.items():
            sets.append(self._all_by.get(("label", key, value), set()))
        for key, value in want.capabilities.items():
            indexed = capability_key(value)
            if indexed is not None:
                sets.append(self._all_by.get(("cap", key, indexed), set()))
        if want.names:
            named = {n for n in want.names if n in self._entries}
            for name in want.names:
                named |= self._all_by.get(("name", name), set())
            sets.append(named)
        smallest: Collection[str] = min(sets, key=len) if sets else self._entries.keys()
        found: list[DeviceRecord] = []
        for device_id in smallest:
            record = self._entries[device_id].record
            if matches(want, record):
                found.append(record)
                if len(found) >= most:
                    break
        return found

    def offered(self, what: str) -> list[str]:
        """What the inventory offers of `what` ("kind", "name", "label" or "cap"): each
        distinct value (labels and capabilities as KEY=VALUE), sorted."""
        return sorted(self._offered.get(what, ()))

    def _candidates(self, want: DeviceRequest) -> Iterable[str]:
        sets: list[dict[str, None]] = []
        if want.kind is not None:
            sets.append(self._free_by.get(("kind", want.kind), {}))
        for key, value in want.labels.items():
            sets.append(self._free_by.get(("label", key, value), {}))
        for key, value in want.capabilities.items():
            indexed = capability_key(value)
            if indexed is not None:
                sets.append(self._free_by.get(("cap", key, indexed), {}))
        if want.names:
            named: dict[str, None] = {}
            for name in want.names:
                if name in self._free:
                    named[name] = None
                named.update(self._free_by.get(("name", name), {}))
            sets.append(named)
        if not sets:
            return self._free
        return min(sets, key=lambda candidates: len(candidates))

    def _unindex(self, device_id: str) -> None:
        entry = self._entries.pop(device_id, None)
        if entry is None:
            return
        holder = entry.record.holder_job_id
        if holder is not None and holder in self._held:
            self._held[holder].discard(device_id)
            if not self._held[holder]:
                del self._held[holder]
        agent_devices = self._by_agent.get(entry.record.agent_id)
        if agent_devices is not None:
            agent_devices.discard(device_id)
            if not agent_devices:
                del self._by_agent[entry.record.agent_id]
        for what, value in _offers(entry):
            counted = self._offered[what]
            counted[value] -= 1
            if counted[value] <= 0:
                del counted[value]
        for key in _keys(entry):
            every = self._all_by.get(key)
            if every is not None:
                every.discard(device_id)
                if not every:
                    del self._all_by[key]
        if self._free.pop(device_id, 0) is None:
            for key in _keys(entry):
                bucket = self._free_by.get(key)
                if bucket is not None:
                    bucket.pop(device_id, None)
                    if not bucket:
                        del self._free_by[key]


def _keys(entry: Entry) -> Iterator[Hashable]:
    record = entry.record
    yield ("kind", record.kind)
    yield ("name", record.name)
    for key, value in entry.labels.items():
        yield ("label", key, value)
    for key, value in record.capabilities.items():
        indexed = capability_key(value)
        if indexed is not None:
            yield ("cap", key, indexed)


def _offers(entry: Entry) -> Iterator[tuple[str, str]]:
    """What a device offers, as the words a waiting test's reason shows."""
    record = entry.record
    yield "kind", record.kind
    yield "name", record.id
    for key, value in entry.labels.items():
        yield "label", f"{key}={value}"
    for key, value in record.capabilities.items():
        yield "cap", f"{key}={value}"
