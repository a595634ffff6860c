"""Why a test waits for devices, in words: nothing could ever match (and what there is), or
every matching device is taken. Decided from the inventory alone (no I/O here)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from testfleet.hub.allocator import matches
from testfleet.protocol.descriptor import DeviceRequest
from testfleet.protocol.states import DeviceState
from testfleet.store.records import DeviceRecord

SHOWN = 10  # known values listed at most


def explain(want: DeviceRequest, devices: Sequence[DeviceRecord]) -> str:
    """Why `want` is not met by `devices` (the inventory, removed devices left out)."""
    matching = [d for d in devices if matches(want, d)]
    if len(matching) >= want.count:
        busy = sum(1 for d in matching if d.state == DeviceState.BUSY)
        offline = sum(1 for d in matching if d.state == DeviceState.OFFLINE)
        return (
            f"waiting: all {len(matching)} matching device(s) are taken "
            f"({busy} busy, {offline} offline); the test needs {want.count}"
        )
    if matching:
        return f"waiting: only {len(matching)} device(s) match and the test needs {want.count}"
    return "waiting: " + _missing(want, devices)


def _missing(want: DeviceRequest, devices: Sequence[DeviceRecord]) -> str:
    """The first requirement no device meets, with what devices offer instead."""
    if want.kind is not None and not any(d.kind == want.kind for d in devices):
        return (
            f"no device is of kind {want.kind!r} (known kinds: {_known(d.kind for d in devices)})"
        )
    if want.names and not any(d.name in want.names or d.id in want.names for d in devices):
        names = ", ".join(want.names)
        return f"no device is named {names} (known: {_known(d.id for d in devices)})"
    for key, value in want.labels.items():
        if not any(_labels(d).get(key) == value for d in devices):
            known = _known(f"{k}={v}" for d in devices for k, v in _labels(d).items())
            return f"no device has labels {key}={value} (known labels: {known})"
    for key, value in want.capabilities.items():
        single = DeviceRequest(capabilities={key: value})
        if not any(matches(single, d) for d in devices):
            known = _known(f"{k}={v}" for d in devices for k, v in d.capabilities.items())
            return f"no device has capability {key}={value} (known: {known})"
    return f"no device has all of {_wanted(want)} at once"


def _labels(device: DeviceRecord) -> dict[str, str]:
    return {**(device.agent_labels or {}), **device.labels}


def _known(values: Iterable[str]) -> str:
    distinct = sorted(set(values))
    if not distinct:
        return "none; no agent offers any device yet"
    shown = ", ".join(distinct[:SHOWN])
    return shown + (f", ... ({len(distinct) - SHOWN} more)" if len(distinct) > SHOWN else "")


def _wanted(want: DeviceRequest) -> str:
    parts = []
    if want.kind:
        parts.append(f"kind {want.kind}")
    parts += [f"label {k}={v}" for k, v in want.labels.items()]
    parts += [f"capability {k}={v}" for k, v in want.capabilities.items()]
    if want.names:
        parts.append("name in " + ", ".join(want.names))
    return ", ".join(parts)
