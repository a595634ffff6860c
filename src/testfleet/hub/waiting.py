"""Why a test waits for devices, in words: nothing could ever match (and what there is), or
every matching device is taken. Decided from the hub's index of devices (no I/O here, and no
more work than the request's constraints take)."""

from __future__ import annotations

from collections.abc import Iterable

from testfleet.hub.device_index import DeviceIndex
from testfleet.protocol.descriptor import DeviceRequest
from testfleet.protocol.states import DeviceState

SHOWN = 10  # known values listed at most
COUNTED = 100  # matching devices counted at most


def explain(want: DeviceRequest, index: DeviceIndex) -> str:
    """Why `want` is not met by the devices `index` holds."""
    looked = max(want.count, COUNTED)
    matching = index.matching(want, looked)
    if len(matching) >= want.count:
        busy = sum(1 for d in matching if d.state == DeviceState.BUSY)
        offline = sum(1 for d in matching if d.state == DeviceState.OFFLINE)
        many = f"{len(matching)}+" if len(matching) >= looked else str(len(matching))
        return (
            f"waiting: all {many} matching device(s) are taken "
            f"({busy} busy, {offline} offline); the test needs {want.count}"
        )
    if matching:
        return f"waiting: only {len(matching)} device(s) match and the test needs {want.count}"
    return "waiting: " + _missing(want, index)


def _missing(want: DeviceRequest, index: DeviceIndex) -> str:
    """The first requirement no device meets, with what devices offer instead."""
    if want.kind is not None and not index.matching(DeviceRequest(kind=want.kind), 1):
        return f"no device is of kind {want.kind!r} (known kinds: {_known(index.offered('kind'))})"
    if want.names and not index.matching(DeviceRequest(names=want.names), 1):
        names = ", ".join(want.names)
        return f"no device is named {names} (known: {_known(index.offered('name'))})"
    for key, value in want.labels.items():
        if not index.matching(DeviceRequest(labels={key: value}), 1):
            known = _known(index.offered("label"))
            return f"no device has labels {key}={value} (known labels: {known})"
    for key, value in want.capabilities.items():
        if not index.matching(DeviceRequest(capabilities={key: value}), 1):
            known = _known(index.offered("cap"))
            return f"no device has capability {key}={value} (known: {known})"
    wanted = _wanted(want)
    if not wanted:  # any device would do: there is none
        return "no device yet; no agent offers any"
    return f"no device has all of {wanted} at once"


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
