"""The agent's devices: its host slots and what its providers find, kept current, each change
an event for the hub (DEVICE_ADDED / DEVICE_REMOVED, numbered and resent like any other)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence

from testfleet.agent.devices.base import DeviceProvider, ProviderError
from testfleet.agent.outbox import Outbox
from testfleet.protocol.wire import DeviceAdded, DeviceRemoved, DeviceSpec

_log = logging.getLogger(__name__)


class Inventory:
    """Starts the providers, follows their changes, answers what a device offers."""

    def __init__(
        self, outbox: Outbox, slots: Sequence[DeviceSpec], providers: Sequence[DeviceProvider]
    ) -> None:
        self._outbox = outbox
        self._devices: dict[str, DeviceSpec] = {d.name: d for d in slots}
        self._providers = list(providers)
        self._watchers: list[asyncio.Task[None]] = []

    def current(self) -> list[DeviceSpec]:
        """Every device offered now."""
        return list(self._devices.values())

    async def start(self) -> None:
        """Start every provider (ProviderError if one cannot) and follow their changes."""
        for provider in self._providers:
            for device in await provider.start():
                if device.name in self._devices:
                    raise ProviderError(
                        f"--provider {provider.name}: device name {device.name!r} is taken"
                    )
                self._devices[device.name] = device
            self._watchers.append(
                asyncio.create_task(provider.watch(self._report), name=f"devices-{provider.name}")
            )
        _log.info("offering %d device(s)", len(self._devices))

    def _report(self, added: DeviceSpec | None, removed: str | None) -> None:
        if added is not None:
            self._devices[added.name] = added
            self._outbox.add(DeviceAdded(seq=1, device=added))
            _log.info("device %s added", added.name)
        if removed is not None and self._devices.pop(removed, None) is not None:
            self._outbox.add(DeviceRemoved(seq=1, name=removed))
            _log.info("device %s removed", removed)

    def url_of(self, device_name: str) -> str | None:
        """The device's WebDriver endpoint (None: it has none, or is gone)."""
        device = self._devices.get(device_name)
        return device.url if device is not None else None

    def environment(self, device_name: str) -> dict[str, str]:
        """What a step on the device gets in its environment: the device's WebDriver URL
        and the capabilities to ask it for."""
        device = self._devices.get(device_name)
        if device is None:
            return {}
        capabilities = {**device.capabilities, **device.session_capabilities}
        env = {
            "TESTFLEET_DEVICE_NAME": device.name,
            "TESTFLEET_DEVICE_CAPS": json.dumps(capabilities, sort_keys=True),
        }
        if device.url:
            env["TESTFLEET_WEBDRIVER_URL"] = device.url
        return env

    async def close(self) -> None:
        """Stop following and stop what the providers started."""
        for watcher in self._watchers:
            watcher.cancel()
        await asyncio.gather(*self._watchers, return_exceptions=True)
        for provider in self._providers:
            try:
                await provider.close()
            except Exception:
                _log.exception("closing provider %s failed", provider.name)
