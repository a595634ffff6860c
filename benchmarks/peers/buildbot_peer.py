"""The trivial-job workload on Buildbot 4.3: a master and two workers on loopback.

Run from its own virtual environment (Buildbot's dependencies stay out of testfleet's):

    python3 -m venv .venv-peers
    .venv-peers/bin/pip install -r benchmarks/peers/requirements-buildbot.txt
    .venv-peers/bin/python benchmarks/peers/buildbot_peer.py --jobs 1000 --single 30

Builds are forced through the REST API (JSON-RPC `force` on a ForceScheduler) of a builder
whose one step runs `echo hi` on either worker. Prints one JSON line; progress on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

BIN = Path(sys.executable).parent
MASTER_CFG = """
from buildbot.plugins import schedulers, steps, util, worker

c = BuildmasterConfig = {{}}
c["workers"] = [worker.Worker(name, "secret") for name in {workers!r}]
c["protocols"] = {{"pb": {{"port": "tcp:{pb}:interface=127.0.0.1"}}}}
c["change_source"] = []
c["schedulers"] = [schedulers.ForceScheduler(name="force", builderNames=["trivial"])]
factory = util.BuildFactory()
factory.addStep(steps.ShellCommand(command=["echo", "hi"]))
c["builders"] = [util.BuilderConfig(name="trivial", workernames={workers!r},
                                    factory=factory, collapseRequests=False)]
c["title"] = "peer"
c["buildbotURL"] = "http://127.0.0.1:{www}/"
c["www"] = {{"port": "tcp:{www}:interface=127.0.0.1", "plugins": {{}}}}
c["db"] = {{"db_url": "sqlite:///state.sqlite"}}
c["buildbotNetUsageData"] = None
"""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run(*args: str, cwd: Path | None = None) -> None:
    subprocess.run(
        args, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120
    )


@contextlib.contextmanager
def buildbot(workdir: Path, workers: int) -> Iterator[str]:
    """A running master with `workers` connected workers; yields the REST base URL."""
    names = [f"w{i}" for i in range(workers)]
    pb, www = free_port(), free_port()
    master = workdir / "master"
    run(str(BIN / "buildbot"), "create-master", "-q", str(master))
    (master / "master.cfg").write_text(MASTER_CFG.format(workers=names, pb=pb, www=www))
    worker_dirs = [workdir / name for name in names]
    try:
        run(str(BIN / "buildbot"), "start", str(master))
        for name, path in zip(names, worker_dirs, strict=True):
            run(
                str(BIN / "buildbot-worker"),
                "create-worker",
                "-q",
                str(path),
                f"127.0.0.1:{pb}",
                name,
                "secret",
            )
            run(str(BIN / "buildbot-worker"), "start", str(path))
        url = f"http://127.0.0.1:{www}/api/v2"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                connected = httpx.get(f"{url}/workers", timeout=5).json()["workers"]
                if sum(bool(w["connected_to"]) for w in connected) == workers:
                    break
            time.sleep(0.2)
        else:
            raise RuntimeError("Buildbot workers did not connect within 60 s")
        yield url
    finally:
        for path in worker_dirs:
            stop(str(BIN / "buildbot-worker"), path)
        stop(str(BIN / "buildbot"), master)


def stop(command: str, basedir: Path) -> None:
    """Stop a Buildbot daemon; kill it if it is still there afterwards."""
    with contextlib.suppress(Exception):
        subprocess.run(
            [command, "stop", str(basedir)],
            timeout=60,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    pid_file = basedir / "twistd.pid"
    with contextlib.suppress(OSError, ValueError):
        os.kill(int(pid_file.read_text().strip()), signal.SIGKILL)


FORCE = {
    "jsonrpc": "2.0",
    "method": "force",
    "id": 1,
    "params": {"builderid": 1, "reason": "benchmark", "owner": "bench"},
}


async def force(client: httpx.AsyncClient) -> int:
    """Force one build; returns its build request id."""
    response = await client.post("/forceschedulers/force", json=FORCE)
    response.raise_for_status()
    result = response.json()["result"]
    return int(next(iter(result[1].values())))


async def single(url: str, count: int) -> list[float]:
    """Submit-to-complete times (ms) of `count` builds forced one at a time."""
    times = []
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        for _ in range(count):
            began = time.perf_counter()
            request_id = await force(client)
            for _ in range(3000):
                data = (await client.get(f"/buildrequests/{request_id}")).json()
                if data["buildrequests"][0]["complete"]:
                    break
                await asyncio.sleep(0.005)
            times.append((time.perf_counter() - began) * 1000)
    return times


async def throughput(url: str, jobs: int, limit_s: float) -> dict[str, Any]:
    """Force `jobs` builds at once; time until Buildbot reports them all complete."""
    async with httpx.AsyncClient(
        base_url=url, timeout=120, limits=httpx.Limits(max_connections=16)
    ) as client:
        before = await completed(client)
        began = time.perf_counter()
        semaphore = asyncio.Semaphore(16)

        async def one() -> int:
            async with semaphore:
                return await force(client)

        await asyncio.gather(*(one() for _ in range(jobs)))
        done, failed = 0, 0
        while time.perf_counter() < began + limit_s:
            done, failed = await completed(client)
            done -= before[0]
            failed -= before[1]
            if done >= jobs:
                break
            await asyncio.sleep(0.25)
        seconds = time.perf_counter() - began
    return {
        "jobs": jobs,
        "completed": done,
        "failed": failed,
        "seconds": round(seconds, 3),
        "jobs_per_s": round(done / seconds, 1),
    }


async def completed(client: httpx.AsyncClient) -> tuple[int, int]:
    """How many build requests are complete, and how many of those did not succeed."""
    params = {"complete": "true", "field": ["results", "complete"]}
    data = (await client.get("/buildrequests", params=params)).json()
    results = [r["results"] for r in data["buildrequests"]]
    return len(results), sum(1 for r in results if r not in (0, None))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--single", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=900)
    args = parser.parse_args()
    import buildbot as buildbot_package

    workdir = Path(tempfile.mkdtemp(prefix="tf-buildbot-"))
    try:
        with buildbot(workdir, args.workers) as url:
            log(f"buildbot {buildbot_package.version} up at {url}")
            times = asyncio.run(single(url, args.single)) if args.single else []
            result = asyncio.run(throughput(url, args.jobs, args.timeout))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if times:
        result["single_p50_ms"] = round(statistics.median(times), 1)
        result["single_p95_ms"] = round(sorted(times)[int(0.95 * (len(times) - 1))], 1)
    print(
        json.dumps(
            {
                "peer": "buildbot",
                "buildbot_version": buildbot_package.version,
                "workers": args.workers,
                **result,
            }
        )
    )


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
