"""Whether a device meets a device request: its kind, names, labels (the agent's and its
own) and capabilities (strings compared without case)."""

from __future__ import annotations

from testfleet.protocol.descriptor import DeviceRequest
from testfleet.store.records import DeviceRecord


def matches(want: DeviceRequest, row: DeviceRecord) -> bool:
    """Whether a free device (with its agent's labels) satisfies the request."""
    if want.kind is not None and row.kind != want.kind:
        return False
    if want.names and row.name not in want.names and row.id not in want.names:
        return False
    labels = {**(row.agent_labels or {}), **(row.labels or {})}
    if any(labels.get(key) != value for key, value in want.labels.items()):
        return False
    capabilities = row.capabilities or {}
    for key, value in want.capabilities.items():
        have = capabilities.get(key)
        if isinstance(value, str) and isinstance(have, str):
            if value.lower() != have.lower():
                return False
        elif have != value:
            return False
    return True
