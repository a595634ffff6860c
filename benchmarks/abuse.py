"""Hostile input against a real hub (issue 7): every attack of the hardening issue, while
legitimate jobs run beside them; prints one JSON line.

Measured: the hub's peak resident memory, /healthz latency (p50, p99, max) sampled every
20 ms throughout, whether every legitimate job completed with every log line, and what each
attack got back. Loopback only; every loop is bounded.

Usage: python -m benchmarks.abuse [--followers 200] [--junk 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import psutil
from tests.support.hostile import ALIAS_BOMB
from tests.support.processes import Agent, Hub
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from benchmarks.harness import MemorySampler, percentile
from testfleet.protocol.version import WIRE_VERSION

LEGIT_LINES = 40
LEGIT = (
    "import time\nfor i in range({n}):\n    print(f'line {{i}}', flush=True)\n    time.sleep(0.2)"
)


def legit_job(name: str) -> dict[str, Any]:
    """A job whose step prints numbered lines for 8 s: its log shows any loss."""
    code = LEGIT.format(n=LEGIT_LINES)
    return {
        "name": name,
        "tests": [
            {
                "name": "t",
                "devices": {"labels": {"pool": "legit"}},
                "steps": [
                    {
                        "name": "count",
                        "plugin": "cmd",
                        "params": {"executable": sys.executable, "args": ["-u", "-c", code]},
                    }
                ],
            }
        ],
    }


class FakeAgent:
    """A hostile agent: the real wire protocol, sent raw."""

    def __init__(self, url: str, token: str, name: str) -> None:
        self.url = url.replace("http://", "ws://") + "/api/v1/agents/connect"
        self.token = token
        self.name = name
        self.socket: ClientConnection | None = None

    async def connect(self, devices: int = 0) -> dict[str, Any]:
        self.socket = await connect(
            self.url,
            additional_headers={"Authorization": f"Bearer {self.token}"},
            max_size=None,
            open_timeout=10,
        )
        register = {
            "type": "REGISTER",
            "name": self.name,
            "instance_id": uuid.uuid4().hex,
            "version": "abuse",
            "wire_version": WIRE_VERSION,
            "devices": [{"name": f"d{i}", "labels": {"pool": "hostile"}} for i in range(devices)],
        }
        await self.socket.send(json.dumps(register))
        return dict(json.loads(await self.socket.recv()))

    async def send(self, frame: str | bytes) -> None:
        assert self.socket is not None
        await self.socket.send(frame)

    async def drain(self, seconds: float) -> list[dict[str, Any]]:
        """What the hub sends within `seconds` (until it closes)."""
        assert self.socket is not None
        got: list[dict[str, Any]] = []
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                async with asyncio.timeout(left):
                    got.append(json.loads(await self.socket.recv()))
            except (TimeoutError, ConnectionClosed):
                break
        return got

    async def close(self) -> None:
        if self.socket is not None:
            await self.socket.close()


class Watch:
    """Samples /healthz every 20 ms while attacks run."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session
        self.samples: list[tuple[float, float]] = []  # (when, milliseconds)
        self.failures = 0

    def between(self, start: float, end: float) -> dict[str, float]:
        """p50, p99 and max of /healthz within a window."""
        window = [ms for at, ms in self.samples if start <= at <= end] or [0.0]
        return {
            "healthz_p50_ms": round(statistics.median(window), 1),
            "healthz_p99_ms": round(percentile(window, 99), 1),
            "healthz_max_ms": round(max(window), 1),
        }

    async def run(self) -> None:
        while True:
            began = time.perf_counter()
            try:
                async with asyncio.timeout(5):
                    async with self.session.get("/healthz") as response:
                        await response.read()
                        ok = response.status == 200
            except (TimeoutError, aiohttp.ClientError):
                ok = False
            self.samples.append((began, (time.perf_counter() - began) * 1000))
            self.failures += not ok
            await asyncio.sleep(0.02)


async def attack_forged_report(url: str, token: str, session: aiohttp.ClientSession) -> str:
    """An agent reports on a task another agent holds."""
    async with session.get("/api/v1/jobs", params={"state": "running"}) as response:
        running = (await response.json())["jobs"]
    async with session.get(f"/api/v1/jobs/{running[0]['job_id']}") as response:
        status = await response.json()
    task_id = status["runs"][0]["tests"][0]["tasks"][0]["task_id"]
    forger = FakeAgent(url, token, "forger")
    await forger.connect()
    frame = {"type": "TASK_FINISHED", "seq": 1, "task_id": task_id, "state": "failed"}
    await forger.send(json.dumps(frame))
    answers = await forger.drain(1.0)
    await forger.close()
    return ",".join(sorted({a.get("code", a["type"]) for a in answers}))


async def attack_impersonation(url: str, token: str) -> str:
    """A credential bound to one name registers as the legitimate agent, with a huge seq."""
    impostor = FakeAgent(url, token, "legit")
    first = await impostor.connect()
    await impostor.close()
    other = FakeAgent(url, token, "forger2")
    await other.connect()
    await other.send(
        json.dumps({"type": "LOG", "seq": 2**62, "task_id": 1, "step_index": 0, "text": "x"})
    )
    answers = await other.drain(1.0)
    await other.close()
    return f"impersonation: {first.get('code', first['type'])}; huge seq: " + ",".join(
        a.get("code", a["type"]) for a in answers if a["type"] == "ERROR"
    )


async def attack_junk(url: str, token: str, count: int) -> str:
    """Events for tasks that do not exist, as fast as possible."""
    junk = FakeAgent(url, token, "junk")
    await junk.connect()
    for seq in range(1, count + 1):
        frame = {"type": "LOG", "seq": seq, "task_id": 10**12 + seq, "step_index": 0, "text": "j"}
        if seq % 100 == 0:
            await asyncio.sleep(0)  # let this process's /healthz sampler run
        try:
            await junk.send(json.dumps(frame))
        except ConnectionClosed:
            return f"closed by the hub after {seq} junk events"
    await junk.drain(2.0)
    await junk.close()
    return f"{count} sent"


async def attack_tiny_frames(url: str, token: str, count: int) -> str:
    """Frames of four bytes that are no message, as fast as possible."""
    flooder = FakeAgent(url, token, "flooder")
    await flooder.connect()
    for sent in range(count):
        if sent % 100 == 0:
            await asyncio.sleep(0)  # let this process's /healthz sampler run
        try:
            await flooder.send("{}\n\n")
        except ConnectionClosed as closed:
            return f"closed after {sent} frames: {closed.rcvd.reason if closed.rcvd else ''}"
    await flooder.close()
    return f"{count} sent"


async def attack_big_frames(url: str, token: str, count: int) -> str:
    """Frames of nearly 4 MB each (refused events), then one over the limit."""
    heavy = FakeAgent(url, token, "heavy")
    await heavy.connect()
    text = "y" * (4 * 1024 * 1024 - 200)
    for seq in range(1, count + 1):
        frame = {"type": "LOG", "seq": seq, "task_id": 10**13, "step_index": 0, "text": text}
        try:
            await heavy.send(json.dumps(frame))
        except ConnectionClosed:
            return f"closed after {seq} big frames"
    try:
        await heavy.send("z" * (5 * 1024 * 1024))
        await heavy.drain(1.0)
    except ConnectionClosed:
        pass
    await heavy.close()
    return f"{count} sent, then one too large"


async def attack_bodies(session: aiohttp.ClientSession) -> str:
    """Alias bombs, a 500 MB chunked body, out-of-range numbers and NUL characters."""
    codes: list[int] = []
    for _ in range(20):
        headers = {"Content-Type": "application/yaml"}
        async with session.post("/api/v1/jobs", data=ALIAS_BOMB, headers=headers) as response:
            codes.append(response.status)

    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(5000):
            yield b" " * 100_000

    try:
        async with session.post("/api/v1/jobs", data=chunks()) as response:
            codes.append(response.status)
    except aiohttp.ClientError:
        codes.append(413)  # the hub answered and closed while we were still sending
    for path in (
        "/api/v1/jobs/99999999999999999999999",
        "/api/v1/jobs?name=%00",
        "/api/v1/jobs/1/events?after=99999999999999999999",
    ):
        async with session.get(path) as response:
            codes.append(response.status)
    return ",".join(str(c) for c in sorted(set(codes)))


async def attack_followers(url: str, token: str, count: int) -> str:
    """`count` clients follow a job that logs slowly."""
    connector = aiohttp.TCPConnector(limit=count + 10)
    received = [0] * count
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(base_url=url, connector=connector, headers=headers) as session:
        async with session.post("/api/v1/jobs", json=legit_job("followed")) as response:
            job_id = (await response.json())["job_id"]

        async def follow(index: int) -> None:
            params = {"follow": "true"}
            async with session.get(f"/api/v1/jobs/{job_id}/events", params=params) as response:
                async for _line in response.content:
                    received[index] += 1

        tasks = [asyncio.create_task(follow(i)) for i in range(count)]
        await asyncio.sleep(6)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return f"{count} followers, {min(received)}-{max(received)} lines each"


async def run(
    url: str, hub_pid: int, tokens: dict[str, str], args: argparse.Namespace
) -> dict[str, Any]:
    results: dict[str, Any] = {}
    async with aiohttp.ClientSession(
        base_url=url, headers={"Authorization": f"Bearer {tokens['admin']}"}
    ) as session:
        watch = Watch(session)
        watching = asyncio.create_task(watch.run())
        with MemorySampler(hub_pid) as memory:
            legit_ids = []
            for n in range(4):
                async with session.post("/api/v1/jobs", json=legit_job(f"legit-{n}")) as r:
                    legit_ids.append((await r.json())["job_id"])
            await asyncio.sleep(1.0)
            attacks: list[tuple[str, Callable[[], Awaitable[str]]]] = [
                ("forged_report", lambda: attack_forged_report(url, tokens["forger"], session)),
                ("impersonation", lambda: attack_impersonation(url, tokens["forger2"])),
                ("bodies", lambda: attack_bodies(session)),
                ("junk_events", lambda: attack_junk(url, tokens["junk"], args.junk)),
                ("tiny_frames", lambda: attack_tiny_frames(url, tokens["flooder"], args.tiny)),
                ("big_frames", lambda: attack_big_frames(url, tokens["heavy"], args.big)),
                ("followers", lambda: attack_followers(url, tokens["admin"], args.followers)),
            ]
            for name, attack in attacks:
                began = time.perf_counter()
                results[name] = {"answer": await attack()}
                ended = time.perf_counter()
                results[name]["seconds"] = round(ended - began, 2)
                results[name].update(watch.between(began, ended))
            complete = 0
            for job_id in legit_ids:
                for _ in range(600):
                    async with session.get(f"/api/v1/jobs/{job_id}") as r:
                        state = (await r.json())["state"]
                    if state in ("completed", "failed", "cancelled"):
                        break
                    await asyncio.sleep(0.1)
                async with session.get(f"/api/v1/jobs/{job_id}/logs") as r:
                    log = await r.text()
                expected = "".join(f"line {i}\n" for i in range(LEGIT_LINES))
                complete += state == "completed" and log == expected
        watching.cancel()
        await asyncio.gather(watching, return_exceptions=True)
    latencies = [ms for _, ms in watch.samples]
    results["summary"] = {
        "hub_peak_rss_mb": round(memory.peak_mb, 1),
        "healthz_p50_ms": round(statistics.median(latencies), 1),
        "healthz_p99_ms": round(percentile(latencies, 99), 1),
        "healthz_max_ms": round(max(latencies), 1),
        "healthz_samples": len(latencies),
        "healthz_failures": watch.failures,
        "legit_jobs_complete_with_every_line": f"{complete}/{len(legit_ids)}",
        "cpus": psutil.cpu_count(),
    }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--followers", type=int, default=200)
    parser.add_argument("--junk", type=int, default=100_000)
    parser.add_argument("--tiny", type=int, default=100_000)
    parser.add_argument("--big", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tf-abuse-") as tmp:
        workdir = Path(tmp)
        hub = Hub(workdir, auth=True, extra=["--log-level", "warning"])
        tokens = {
            "admin": hub.create_token("admin", "admin"),
            **{
                name: hub.create_token(name, "agent")
                for name in ("legit", "forger", "forger2", "junk", "flooder", "heavy")
            },
        }
        hub.start()
        agent = Agent(
            workdir, hub.url, "legit", slots=4, labels={"pool": "legit"}, token=tokens["legit"]
        ).start()
        try:
            assert hub.process is not None
            headers = {"Authorization": f"Bearer {tokens['admin']}"}
            with httpx.Client(base_url=hub.url, headers=headers, timeout=30) as client:
                agent.wait_online(client)
            results = asyncio.run(run(hub.url, hub.process.pid, tokens, args))
            log = hub.process.log_path.read_bytes()
            results["summary"]["hub_log_bytes"] = len(log)
        finally:
            agent.stop()
            hub.stop()
    json.dump(results, sys.stdout)
    print()


if __name__ == "__main__":
    main()
