"""Device providers: where an agent's devices come from (`--provider NAME[:OPTIONS]`)."""

from __future__ import annotations

from testfleet.agent.devices.android import AndroidProvider
from testfleet.agent.devices.base import DeviceProvider, ProviderError
from testfleet.agent.devices.chromium import ChromiumProvider
from testfleet.agent.devices.inventory import Inventory
from testfleet.agent.devices.static import StaticProvider

PROVIDERS: dict[str, type[DeviceProvider]] = {
    "chromium": ChromiumProvider,
    "static": StaticProvider,
    "android": AndroidProvider,
}

__all__ = ["DeviceProvider", "Inventory", "ProviderError", "make_provider"]


def make_provider(spec: str) -> DeviceProvider:
    """A provider from `NAME[:OPTIONS]`; ProviderError for an unknown name or bad options."""
    name, _, options = spec.partition(":")
    kind = PROVIDERS.get(name.strip())
    if kind is None:
        raise ProviderError(
            f"--provider {spec!r}: unknown provider {name!r} (known: {', '.join(PROVIDERS)})"
        )
    return kind(options)
