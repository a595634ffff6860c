"""`chromium`: Debian's Chromium driven by chromedriver, one chromedriver per device, started
when the agent starts (a session then costs only the browser's start) and restarted if it
dies. Options: count=N, chromium=PATH, chromedriver=PATH, headless=true|false,
host=ADDRESS (the address the hub reaches this machine at; any but loopback lets chromedriver
accept connections from `allowed-ips`), allowed-ips=IP;IP.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import re
import shutil
import signal
import socket
import subprocess
from dataclasses import dataclass

import httpx

from testfleet.agent.devices.base import (
    DeviceProvider,
    ProviderError,
    Report,
    parse_options,
    positive_int,
)
from testfleet.protocol.wire import DeviceSpec

_log = logging.getLogger(__name__)
ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
START_TIMEOUT = 15.0
WATCH_EVERY = 2.0


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    """The driver ends when the agent does, even killed: no orphan holds a browser."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass
class _Driver:
    name: str
    port: int
    process: asyncio.subprocess.Process


class ChromiumProvider(DeviceProvider):
    """Chromium browsers, each behind a chromedriver of its own."""

    name = "chromium"

    def __init__(self, options: str) -> None:
        known = {"count", "chromium", "chromedriver", "headless", "host", "allowed-ips"}
        opts = parse_options(options, "chromium", known)
        self.count = positive_int(opts, "count", 1, "chromium")
        self.chromium = opts.get("chromium") or _which("chromium", "chromium-browser")
        self.chromedriver = opts.get("chromedriver") or _which("chromedriver")
        headless = opts.get("headless", "true").lower()
        if headless not in ("true", "false"):
            raise ProviderError(f"--provider chromium: headless={headless!r}: true or false")
        self.args = ARGS if headless == "true" else ARGS[1:]
        self.host = opts.get("host", "127.0.0.1")
        self.allowed_ips = opts.get("allowed-ips", "").replace(";", ",")
        self.version = ""
        self._drivers: dict[str, _Driver] = {}

    async def start(self) -> list[DeviceSpec]:
        self.version = await _version(self.chromium)
        return [await self._launch(f"chromium-{i}") for i in range(self.count)]

    def _device(self, driver: _Driver) -> DeviceSpec:
        return DeviceSpec(
            name=driver.name,
            kind="browser",
            capabilities={
                "browserName": "chrome",
                "platformName": "linux",
                "browserVersion": self.version,
            },
            url=f"http://{self.host}:{driver.port}",
            session_capabilities={
                "goog:chromeOptions": {"binary": self.chromium, "args": list(self.args)}
            },
        )

    async def _launch(self, name: str) -> DeviceSpec:
        port = _free_port("127.0.0.1")
        args = [self.chromedriver, f"--port={port}"]
        if self.allowed_ips:
            args.append(f"--allowed-ips={self.allowed_ips}")
        process = await asyncio.create_subprocess_exec(
            *args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )
        driver = self._drivers[name] = _Driver(name, port, process)
        await _ready(f"http://127.0.0.1:{port}/status", process)
        return self._device(driver)

    async def watch(self, report: Report) -> None:
        while True:
            await asyncio.sleep(WATCH_EVERY)
            for name, driver in list(self._drivers.items()):
                if driver.process.returncode is None:
                    continue
                _log.warning(
                    "chromedriver of %s exited (%s); restarting it", name, driver.process.returncode
                )
                report(None, name)
                try:
                    report(await self._launch(name), None)
                except ProviderError as error:
                    _log.error("%s", error)

    async def close(self) -> None:
        for driver in self._drivers.values():
            if driver.process.returncode is None:
                driver.process.terminate()
        for driver in self._drivers.values():
            try:
                await asyncio.wait_for(driver.process.wait(), 5)
            except TimeoutError:
                driver.process.kill()
                await driver.process.wait()
        self._drivers.clear()


def _which(*names: str) -> str:
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    raise ProviderError(f"--provider chromium: {names[0]} is not installed (not on PATH)")


async def _version(binary: str) -> str:
    try:
        process = await asyncio.create_subprocess_exec(
            binary,
            "--version",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        out, _ = await asyncio.wait_for(process.communicate(), 30)
    except (OSError, TimeoutError) as error:
        raise ProviderError(f"--provider chromium: cannot run {binary}: {error}") from None
    match = re.search(r"(\d+(?:\.\d+)+)", out.decode(errors="replace"))
    if match is None:
        raise ProviderError(f"--provider chromium: {binary} --version printed no version")
    return match.group(1)


async def _ready(url: str, process: asyncio.subprocess.Process) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + START_TIMEOUT
    async with httpx.AsyncClient(timeout=1.0) as client:
        while loop.time() < deadline:
            if process.returncode is not None:
                raise ProviderError(f"chromedriver exited with code {process.returncode}")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(url)).status_code == 200:
                    return
            await asyncio.sleep(0.05)
    process.kill()
    await process.wait()
    raise ProviderError(f"chromedriver did not answer {url} within {START_TIMEOUT:g} s")
