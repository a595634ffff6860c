"""Which device can serve a new-session request, and what the node is asked for.

A device serves WebDriver sessions when it has a URL. A candidate capability set matches it
when every capability the device offers and the client also asks for agrees (strings without
regard to case, `browserVersion` and `appium:platformVersion` by prefix, so "156" matches
"156.0.8078.114"; platformName "any" matches every platform). Capabilities the device does not
offer (goog:chromeOptions, pageLoadStrategy ...) are the driver's business and pass through.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from testfleet.hub.gateway.w3c import NewSession, Placement
from testfleet.store.records import DeviceRecord

_PREFIXED = {"browserVersion", "appium:platformVersion"}
_NEVER_MATCHED = {"appium:deviceName", "appium:automationName", "appium:app", "appium:executable"}
"""Appium capabilities that say how to drive, not which device (clients send placeholders)."""


def _agrees(key: str, want: Any, have: Any) -> bool:
    if isinstance(want, str) and isinstance(have, str):
        wanted, had = want.lower(), have.lower()
        if key == "platformName" and wanted == "any":
            return True
        if key in _PREFIXED:
            return had == wanted or had.startswith(wanted + ".")
        return had == wanted
    return bool(want == have)


def candidate_matches(candidate: dict[str, Any], device: DeviceRecord) -> bool:
    """Whether one capability set agrees with what the device offers."""
    offered = device.capabilities or {}
    for key, want in candidate.items():
        if key in _NEVER_MATCHED or key not in offered:
            continue
        if not _agrees(key, want, offered[key]):
            return False
    return True


def placed(placement: Placement, device: DeviceRecord) -> bool:
    """Whether the device is where the `tf:` capabilities allow."""
    if placement.agent is not None and device.agent_name != placement.agent:
        return False
    if placement.udids:
        udid = (device.capabilities or {}).get("appium:udid")
        if not ({udid, device.name, device.id} & set(placement.udids)):
            return False
    labels = {**(device.agent_labels or {}), **(device.labels or {})}
    return all(labels.get(key) == value for key, value in placement.labels.items())


def chosen_candidate(request: NewSession, device: DeviceRecord) -> dict[str, Any] | None:
    """The first candidate (in the client's order) the device can serve, or None."""
    if not device.url or device.removed or not placed(request.placement, device):
        return None
    return next((c for c in request.candidates if candidate_matches(c, device)), None)


def matcher(request: NewSession) -> Callable[[DeviceRecord], bool]:
    """The allocator's predicate for this request."""
    return lambda device: chosen_candidate(request, device) is not None


def least_used_first(device: DeviceRecord) -> tuple[int, str]:
    """Prefer the device used longest ago (never used first), then by id."""
    last = device.last_used_at
    return (0 if last is None else 1, f"{last.isoformat() if last else ''}|{device.id}")


def merge(requested: Any, offered: Any) -> Any:
    """Deep-merge what the device adds into what the client asked: objects merge key by key,
    arrays keep the client's items and add the device's missing ones, the device wins on
    anything else (it knows where its browser is, which udid it has)."""
    if isinstance(requested, dict) and isinstance(offered, dict):
        merged = dict(requested)
        for key, value in offered.items():
            merged[key] = merge(requested[key], value) if key in requested else value
        return merged
    if isinstance(requested, list) and isinstance(offered, list):
        return requested + [item for item in offered if item not in requested]
    return offered


def forwarded_capabilities(candidate: dict[str, Any], device: DeviceRecord) -> dict[str, Any]:
    """What the node is asked for: the chosen candidate with the device's capabilities and
    per-session additions merged in."""
    offered = merge(device.capabilities or {}, device.session_capabilities or {})
    merged: dict[str, Any] = merge(candidate, offered)
    return merged
