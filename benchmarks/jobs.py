"""Job throughput, single-job latency and dead-agent detection of testfleet.

Prints one JSON line. Usage: python -m benchmarks.jobs [--jobs 1000] [--backend sqlite|postgresql]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import psutil
from tests.support.processes import Agent, wait_until

from benchmarks.harness import MemorySampler, fresh_postgres, lab, metric, percentile

ECHO = {
    "name": "bench-echo",
    "tags": ["bench"],
    "tests": [
        {"name": "t", "steps": [{"name": "say", "plugin": "echo", "params": {"text": "hi"}}]}
    ],
}


async def throughput(
    url: str, hub_pid: int, jobs: int, concurrency: int, limit_s: float
) -> dict[str, Any]:
    """Submit `jobs` echo jobs at once; time until the hub reports them all finished.

    The load comes from aiohttp: httpx's client spends 3-10 ms of CPU per request at this
    concurrency, which on a 2-core machine would measure the client more than the hub.
    """
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(base_url=url, connector=connector) as session:

        async def finished_count(label: str | None = None) -> float:
            async with session.get("/metrics") as response:
                return metric(await response.text(), "testfleet_jobs_finished_total", label)

        before = await finished_count()
        completed_before = await finished_count('state="completed"')
        semaphore = asyncio.Semaphore(concurrency)
        rejected = 0

        async def submit() -> None:
            nonlocal rejected
            async with semaphore, session.post("/api/v1/jobs", json=ECHO) as response:
                await response.read()
                if response.status != 201:
                    rejected += 1

        hub = psutil.Process(hub_pid)
        with MemorySampler(hub_pid) as memory:
            cpu_before = sum(hub.cpu_times()[:2])
            began = time.perf_counter()
            await asyncio.gather(*(submit() for _ in range(jobs)))
            submitted = time.perf_counter() - began
            finished = 0.0
            while time.perf_counter() < began + limit_s:
                finished = await finished_count() - before
                if finished >= jobs - rejected:
                    break
                await asyncio.sleep(0.1)
            elapsed = time.perf_counter() - began
            hub_cpu = sum(hub.cpu_times()[:2]) - cpu_before
        completed = await finished_count('state="completed"') - completed_before
    return {
        "jobs": jobs,
        "finished": int(finished),
        "completed": int(completed),
        "rejected": rejected,
        "seconds": round(elapsed, 3),
        "submit_seconds": round(submitted, 3),
        "jobs_per_s": round(finished / elapsed, 1),
        "hub_peak_rss_mb": round(memory.peak_mb, 1),
        "hub_cpu_ms_per_job": round(1000 * hub_cpu / max(finished, 1), 2),
    }


def single_latency(url: str, count: int) -> dict[str, float]:
    """One job at a time on an idle hub: submit until the client sees it complete (SSE)."""
    client_ms: list[float] = []
    server_ms: list[float] = []
    with httpx.Client(base_url=url, timeout=30) as client:
        for _ in range(count):
            began = time.perf_counter()
            job_id = client.post("/api/v1/jobs", json=ECHO).json()["job_id"]
            with client.stream(
                "GET",
                f"/api/v1/jobs/{job_id}/events",
                params={"follow": "true", "kind": "job_finished"},
            ) as stream:
                for line in stream.iter_lines():
                    if line.startswith("event: end"):
                        break
            client_ms.append((time.perf_counter() - began) * 1000)
            status = client.get(f"/api/v1/jobs/{job_id}").json()
            assert status["state"] == "completed", status
            from datetime import datetime

            created = datetime.fromisoformat(status["created_at"])
            ended = datetime.fromisoformat(status["ended_at"])
            server_ms.append((ended - created).total_seconds() * 1000)
            time.sleep(0.05)
    return {
        "single_p50_ms": round(percentile(client_ms, 50), 1),
        "single_p95_ms": round(percentile(client_ms, 95), 1),
        "single_server_p50_ms": round(percentile(server_ms, 50), 1),
    }


def _first_task_is(client: httpx.Client, job_id: int, state: str) -> bool:
    status = client.get(f"/api/v1/jobs/{job_id}").json()
    tasks = [t for r in status["runs"] for s in r["tests"] for t in s["tasks"]]
    return bool(tasks) and tasks[0]["state"] == state


def dead_agent_detection(workdir: Path, url: str, tries: int) -> dict[str, float]:
    """kill -9 an agent mid-step; time until its task is reported incomplete."""
    times: list[float] = []
    with httpx.Client(base_url=url, timeout=30) as client:
        for attempt in range(tries):
            name = f"victim-{attempt}"
            victim = Agent(workdir, url, name, slots=1, labels={"victim": name}).start()
            victim.wait_online(client)
            job = {
                "name": "victim",
                "tests": [
                    {
                        "name": "t",
                        "devices": {"labels": {"victim": name}},
                        "steps": [
                            {"name": "wait", "plugin": "sleep", "params": {"duration": "60s"}}
                        ],
                    }
                ],
            }
            job_id = client.post("/api/v1/jobs", json=job).json()["job_id"]
            running = partial(_first_task_is, client, job_id, "running")
            wait_until(running, 20, 0.02, "victim task running")
            killed = time.perf_counter()
            victim.kill()
            lost = partial(_first_task_is, client, job_id, "incomplete")
            wait_until(lost, 30, 0.02, "task incomplete")
            times.append(time.perf_counter() - killed)
            client.post(f"/api/v1/jobs/{job_id}/stop")
    return {
        "dead_agent_p50_s": round(percentile(times, 50), 2),
        "dead_agent_max_s": round(max(times), 2),
        "dead_agent_tries": tries,
    }


def run(
    backend: str, jobs: int, agents: int, slots: int, single: int, dead_tries: int, concurrency: int
) -> dict[str, Any]:
    """Everything for one store backend."""
    result: dict[str, Any] = {"backend": backend, "agents": agents, "slots_per_agent": slots}
    with tempfile.TemporaryDirectory(prefix="tf-bench-") as tmp:
        workdir = Path(tmp)

        def measure(db_url: str | None) -> None:
            with lab(workdir, agents=agents, slots=slots, db_url=db_url) as (hub, _):
                assert hub.process is not None
                if single:
                    result.update(single_latency(hub.url, single))
                result.update(
                    asyncio.run(
                        throughput(hub.url, hub.process.pid, jobs, concurrency, limit_s=600)
                    )
                )
                if dead_tries:
                    result.update(dead_agent_detection(workdir, hub.url, dead_tries))

        if backend == "postgresql":
            with fresh_postgres() as url:
                measure(url)
        else:
            measure(None)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--agents", type=int, default=4)
    parser.add_argument("--slots", type=int, default=8)
    parser.add_argument("--single", type=int, default=50, help="one-at-a-time jobs (0: skip)")
    parser.add_argument("--dead-tries", type=int, default=0, help="kill -9 tries (0: skip)")
    parser.add_argument("--concurrency", type=int, default=64, help="parallel submissions")
    args = parser.parse_args()
    result = run(
        args.backend,
        args.jobs,
        args.agents,
        args.slots,
        args.single,
        args.dead_tries,
        args.concurrency,
    )
    json.dump(result, sys.stdout)
    print()


if __name__ == "__main__":
    main()
