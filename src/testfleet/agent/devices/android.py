"""`android`: phones and emulators as `adb devices -l` lists them, reported as adb sees them
come and go. Options: appium=URL (the Appium server that drives them; without it the phones
serve jobs, not gateway sessions), adb=PATH, interval=SECONDS (how often adb is asked).
"""

from __future__ import annotations

import asyncio
import logging
import shutil

from testfleet.agent.devices.base import (
    DeviceProvider,
    ProviderError,
    Report,
    parse_options,
    positive_float,
)
from testfleet.protocol.wire import DeviceSpec

_log = logging.getLogger(__name__)
ADB_TIMEOUT = 10.0


def parse_adb(output: str) -> dict[str, dict[str, str]]:
    """`adb devices -l` output -> serial -> its properties (model, product, device ...), for
    the devices in state `device` (not offline or unauthorized ones)."""
    found: dict[str, dict[str, str]] = {}
    for line in output.splitlines():
        parts = line.split()
        if len(parts) < 2 or line.startswith(("List of devices", "*")) or parts[1] != "device":
            continue
        found[parts[0]] = dict(p.split(":", 1) for p in parts[2:] if ":" in p)
    return found


class AndroidProvider(DeviceProvider):
    """Android devices seen by adb."""

    name = "android"

    def __init__(self, options: str) -> None:
        opts = parse_options(options, "android", {"appium", "adb", "interval"})
        self.appium = opts.get("appium")
        if self.appium is not None and not self.appium.startswith(("http://", "https://")):
            raise ProviderError(f"--provider android: appium={self.appium!r} must be a URL")
        adb = opts.get("adb") or shutil.which("adb")
        if adb is None:
            raise ProviderError("--provider android: adb is not installed (not on PATH)")
        self.adb = adb
        self.interval = positive_float(opts, "interval", 0.5, "android")
        self._current: dict[str, DeviceSpec] = {}

    def _device(self, serial: str, properties: dict[str, str]) -> DeviceSpec:
        model = properties.get("model", serial).replace("_", " ")
        return DeviceSpec(
            name=serial.replace(":", "-"),
            kind="phone",
            capabilities={
                "platformName": "Android",
                "appium:udid": serial,
                "appium:deviceName": model,
            },
            labels={"model": properties.get("model", "")} if "model" in properties else {},
            url=self.appium.rstrip("/") if self.appium else None,
            session_capabilities={"appium:automationName": "UiAutomator2"},
        )

    async def _list(self) -> dict[str, DeviceSpec]:
        try:
            process = await asyncio.create_subprocess_exec(
                self.adb,
                "devices",
                "-l",
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            out, err = await asyncio.wait_for(process.communicate(), ADB_TIMEOUT)
        except (OSError, TimeoutError) as error:
            raise ProviderError(f"--provider android: {self.adb} devices -l: {error}") from None
        if process.returncode != 0:
            message = err.decode(errors="replace").strip()
            raise ProviderError(f"adb devices -l exited with {process.returncode}: {message}")
        devices = [self._device(s, p) for s, p in parse_adb(out.decode(errors="replace")).items()]
        return {d.name: d for d in devices}

    async def start(self) -> list[DeviceSpec]:
        self._current = await self._list()
        return list(self._current.values())

    async def watch(self, report: Report) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                seen = await self._list()
            except ProviderError as error:
                _log.warning("%s", error)
                continue
            for name in set(self._current) - set(seen):
                report(None, name)
            for name, device in seen.items():
                if self._current.get(name) != device:
                    report(device, None)
            self._current = seen
