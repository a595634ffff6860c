"""`static:PATH`: devices listed in a YAML or JSON file, each an existing WebDriver endpoint
(an Appium server, a remote browser):

    - name: pixel-7
      url: http://127.0.0.1:4723
      capabilities: {platformName: Android, "appium:udid": emulator-5554}
      labels: {pool: phones}
      session_capabilities: {"appium:automationName": UiAutomator2}

(or `{devices: [...]}`). The capabilities are what the device offers, matched against
requests and merged into them when the hub forwards them; `session_capabilities` are added
but not matched. The file is read again when it changes: devices come and go with it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from testfleet.agent.devices.base import DeviceProvider, ProviderError, Report
from testfleet.protocol.wire import DeviceSpec

_log = logging.getLogger(__name__)
WATCH_EVERY = 1.0


class StaticDevice(BaseModel):
    """One entry of the file."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:@-]*$")
    url: str = Field(pattern=r"^https?://", max_length=2000)
    kind: str = Field("webdriver", min_length=1, max_length=50)
    capabilities: dict[str, Any] = Field(default_factory=dict)
    labels: dict[str, str] = Field(default_factory=dict)
    session_capabilities: dict[str, Any] = Field(default_factory=dict)


def load(path: Path) -> list[DeviceSpec]:
    """The devices in the file; ProviderError naming the file and where it is wrong."""
    try:
        text = path.read_text()
    except OSError as error:
        raise ProviderError(f"--provider static: cannot read {path}: {error}") from None
    try:
        document = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as error:
        language = "JSON" if path.suffix == ".json" else "YAML"
        raise ProviderError(f"{path}: not valid {language}: {error}") from None
    prefix = ""
    if isinstance(document, dict) and "devices" in document:
        document, prefix = document["devices"], "/devices"
    if document is None:
        document = []
    if not isinstance(document, list):
        raise ProviderError(f"{path}: {prefix or '/'}: must be a list of devices")
    devices: list[DeviceSpec] = []
    for index, entry in enumerate(document):
        try:
            device = StaticDevice.model_validate(entry)
        except ValidationError as error:
            first = error.errors()[0]
            where = "/".join(str(p) for p in (index, *first["loc"]))
            raise ProviderError(f"{path}: {prefix}/{where}: {first['msg']}") from None
        if any(d.name == device.name for d in devices):
            raise ProviderError(f"{path}: {prefix}/{index}/name: {device.name!r} is used twice")
        devices.append(
            DeviceSpec(
                name=device.name,
                kind=device.kind,
                capabilities=device.capabilities,
                labels=device.labels,
                url=device.url.rstrip("/"),
                session_capabilities=device.session_capabilities,
            )
        )
    return devices


class StaticProvider(DeviceProvider):
    """Devices from a file."""

    name = "static"

    def __init__(self, options: str) -> None:
        path = options.removeprefix("file=")
        if not path:
            raise ProviderError("--provider static:PATH needs the file's path")
        self.path = Path(path)
        self._current: dict[str, DeviceSpec] = {}
        self._stamp: float | None = None

    async def start(self) -> list[DeviceSpec]:
        devices = load(self.path)
        self._current = {d.name: d for d in devices}
        self._stamp = self._mtime()
        return devices

    def _mtime(self) -> float | None:
        try:
            return self.path.stat().st_mtime_ns / 1e9
        except OSError:
            return None

    async def watch(self, report: Report) -> None:
        while True:
            await asyncio.sleep(WATCH_EVERY)
            stamp = self._mtime()
            if stamp == self._stamp:
                continue
            self._stamp = stamp
            try:
                devices = {d.name: d for d in load(self.path)}
            except ProviderError as error:
                _log.error("%s (keeping the devices as they were)", error)
                continue
            for name in set(self._current) - set(devices):
                report(None, name)
            for name, device in devices.items():
                if self._current.get(name) != device:
                    report(device, None)
            self._current = devices
