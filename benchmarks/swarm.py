"""A swarm of agents against one hub (or two on PostgreSQL): how the hub holds up as the fleet
grows (issue 8). Prints one JSON line.

The agents are the real `testfleet.agent.Agent` class, `--processes` processes of them, each
with 1-4 host slots (seeded) and its real heartbeats; the steps' process guard is off (it
would start a reaper per agent). Measured:

- registration: from the first agent started to all of them online (and any that gave up);
- idle: the hub's CPU (share of one core) and resident memory with the whole fleet connected;
- `/healthz` latency (p50, p99, max), sampled every 50 ms throughout;
- load: `--jobs` one-echo-step jobs at once (to the hubs in turn): jobs/s, the hubs' CPU
  per job, failed jobs;
- notifications between the hubs while the jobs ran, sent and received by each (`--hubs 2`);
- the event loop's worst stall and stalls over 100 ms (`testfleet_event_loop_lag_seconds`),
  agents declared lost;
- `/healthz` latency and stalls by phase: registration (the fleet connecting at once),
  idle, jobs.

With `--cross` (several hubs), the first hub runs every job and the agents all connect to the
last one (`--max-running-jobs 0` on the others): every task and its news cross between hubs,
the most notifications there can be.

Usage: python -m benchmarks.swarm --agents 10000 [--jobs 1000] [--backend sqlite|postgresql]
       [--hubs 1|2] [--processes 4] [--cross]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import psutil
from tests.support.processes import Hub

from benchmarks.harness import fresh_postgres, metric, percentile
from benchmarks.jobs import ECHO, throughput


def run_agents(urls: list[str], first: int, count: int, seed: int, ready: Any, stop: Any) -> None:
    """A worker process: `count` agents (spread over `urls`) until `stop` is set."""
    from testfleet.agent import Agent, AgentConfig

    async def main() -> None:
        rng = random.Random(seed)
        agents = [
            Agent(
                AgentConfig(
                    hub_url=urls[n % len(urls)],
                    name=f"swarm-{n:05d}",
                    slots=rng.randint(1, 4),
                    guard_processes=False,
                    labels={"pool": "swarm"},
                )
            )
            for n in range(first, first + count)
        ]
        running = [asyncio.create_task(agent.run()) for agent in agents]
        online = 0
        while online < count and not stop.is_set():  # a fleet that never all registers stops too
            online = sum(agent.connected.is_set() for agent in agents)
            ready.put(("online", first, online))
            await asyncio.sleep(0.5)
        await asyncio.to_thread(stop.wait)
        for agent in agents:
            agent.stop()
        await asyncio.wait(running, timeout=20)

    import logging

    logging.basicConfig(level=logging.ERROR)
    asyncio.run(main())


class Sampler:
    """/healthz latency of every hub, every 50 ms."""

    def __init__(self, urls: list[str]) -> None:
        self.urls = urls
        self.latencies: list[tuple[float, float]] = []
        """(monotonic time, milliseconds) of each request."""
        self.failures = 0

    async def run(self) -> None:
        async with aiohttp.ClientSession() as session:
            while True:
                for url in self.urls:
                    began = time.perf_counter()
                    try:
                        async with asyncio.timeout(10), session.get(f"{url}/healthz") as r:
                            await r.read()
                            self.failures += r.status != 200
                    except (TimeoutError, aiohttp.ClientError):
                        self.failures += 1
                    self.latencies.append((time.monotonic(), (time.perf_counter() - began) * 1000))
                await asyncio.sleep(0.05)


async def fleet_throughput(
    urls: list[str], pids: list[int], jobs: int, concurrency: int, limit_s: float
) -> dict[str, Any]:
    """`jobs` echo jobs at once, submitted to the hubs in turn; time until the hubs together
    report them all finished (each hub counts the jobs it ran), and their CPU per job."""
    hubs = [psutil.Process(pid) for pid in pids]
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def finished(label: str | None = None) -> float:
            total = 0.0
            for url in urls:
                async with session.get(f"{url}/metrics") as response:
                    total += metric(await response.text(), "testfleet_jobs_finished_total", label)
            return total

        before, completed_before = await finished(), await finished('state="completed"')
        semaphore = asyncio.Semaphore(concurrency)
        rejected = 0

        async def submit(n: int) -> None:
            nonlocal rejected
            url = urls[n % len(urls)]
            async with semaphore, session.post(f"{url}/api/v1/jobs", json=ECHO) as response:
                await response.read()
                rejected += response.status != 201

        cpu_before = sum(sum(hub.cpu_times()[:2]) for hub in hubs)
        began = time.perf_counter()
        await asyncio.gather(*(submit(n) for n in range(jobs)))
        submitted = time.perf_counter() - began
        done = 0.0
        while time.perf_counter() < began + limit_s:
            done = await finished() - before
            if done >= jobs - rejected:
                break
            await asyncio.sleep(0.1)
        elapsed = time.perf_counter() - began
        cpu = sum(sum(hub.cpu_times()[:2]) for hub in hubs) - cpu_before
        completed = await finished('state="completed"') - completed_before
    return {
        "jobs": jobs,
        "finished": int(done),
        "completed": int(completed),
        "rejected": rejected,
        "seconds": round(elapsed, 3),
        "submit_seconds": round(submitted, 3),
        "jobs_per_s": round(done / elapsed, 1),
        "hubs_cpu_ms_per_job": round(1000 * cpu / max(done, 1), 2),
    }


async def scrape(url: str) -> str:
    async with aiohttp.ClientSession() as session, session.get(f"{url}/metrics") as r:
        return await r.text()


def latency_stats(latencies: list[float], failures: int | None = None) -> dict[str, float]:
    """p50, p99 and max of /healthz latencies (ms)."""
    latencies = latencies or [0.0]
    stats = {
        "p50": round(statistics.median(latencies), 1),
        "p99": round(percentile(latencies, 99), 1),
        "max": round(max(latencies), 1),
        "samples": len(latencies),
    }
    if failures is not None:
        stats["failures"] = failures
    return stats


async def stalls(urls: list[str]) -> float:
    """Stalls over 100 ms so far, all hubs."""
    texts = [await scrape(url) for url in urls]
    return sum(lag_stats(text)["stalls_over_100ms"] for text in texts)


def lag_stats(text: str) -> dict[str, float]:
    """Stalls over 100 ms, and the largest bucket a stall fell in, from the histogram."""
    buckets: dict[float, float] = {}
    for line in text.splitlines():
        if line.startswith("testfleet_event_loop_lag_seconds_bucket"):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            if le != "+Inf":
                buckets[float(le)] = float(line.rsplit(" ", 1)[1])
    total = metric(text, "testfleet_event_loop_lag_seconds_count")
    under_100ms = buckets.get(0.1, total)
    worst = max((le for le, count in buckets.items() if count < total), default=0.0)
    return {"stalls_over_100ms": total - under_100ms, "worst_stall_bucket_s": worst}


def gc_stats(text: str) -> dict[str, dict[str, float]]:
    """The hub's garbage collections so far by generation: how many, how many stopped it
    over 100 ms, and their seconds in all (`testfleet_gc_pause_seconds`)."""
    name = "testfleet_gc_pause_seconds"
    stats: dict[str, dict[str, float]] = {}
    for generation in ("0", "1", "2"):
        label = f'generation="{generation}"'
        count = metric(text, f"{name}_count", label)
        within = metric(text, f"{name}_bucket", f'{label},le="0.1"')
        stats[generation] = {
            "collections": count,
            "over_100ms": count - within,
            "seconds": round(metric(text, f"{name}_sum", label), 3),
        }
    return stats


def notifications(text: str) -> dict[str, int]:
    """A hub's notifications to and from the other hubs (sent, received) so far."""
    name = "testfleet_hub_notifications_total"
    return {
        direction: int(metric(text, name, f'direction="{direction}"'))
        for direction in ("sent", "received")
    }


async def measure(
    urls: list[str], pids: list[int], args: argparse.Namespace, ready: Any, started: float
) -> dict[str, Any]:
    result: dict[str, Any] = {}
    sampler = Sampler(urls)
    sampling = asyncio.create_task(sampler.run())
    hubs = [psutil.Process(pid) for pid in pids]
    online: dict[int, int] = {}
    deadline = time.monotonic() + args.register_within
    while sum(online.values()) < args.agents and time.monotonic() < deadline:
        while not ready.empty():
            _, first, count = ready.get()
            online[first] = count
        await asyncio.sleep(0.2)
    result["registered"] = sum(online.values())
    result["registration_s"] = round(time.monotonic() - started, 1)
    phases = {"registration": (started, time.monotonic())}
    stalled = {"registration": await stalls(urls)}
    await asyncio.sleep(5)  # settle
    cpu_before = [sum(h.cpu_times()[:2]) for h in hubs]
    idle_from = time.monotonic()
    before_idle = await stalls(urls)
    await asyncio.sleep(args.idle)
    phases["idle"] = (idle_from, time.monotonic())
    stalled["idle"] = await stalls(urls) - before_idle
    idle_cpu = [
        (sum(h.cpu_times()[:2]) - before) / args.idle
        for h, before in zip(hubs, cpu_before, strict=True)
    ]
    result["idle_hub_cpu_share_of_a_core"] = [round(c, 3) for c in idle_cpu]
    result["idle_hub_rss_mb"] = [round(h.memory_info().rss / 2**20, 1) for h in hubs]
    if args.jobs:
        jobs_from, before_jobs = time.monotonic(), await stalls(urls)
        told_before = [notifications(await scrape(url)) for url in urls]
        if len(urls) == 1:
            load = await throughput(urls[0], pids[0], args.jobs, 64, limit_s=600)
        else:
            load = await fleet_throughput(urls, pids, args.jobs, 64, limit_s=600)
        result["jobs"] = load
        phases["jobs"] = (jobs_from, time.monotonic())
        stalled["jobs"] = await stalls(urls) - before_jobs
        told_after = [notifications(await scrape(url)) for url in urls]
        result["jobs"]["notifications_per_hub"] = [
            {k: after[k] - before[k] for k in after}
            for before, after in zip(told_before, told_after, strict=True)
        ]
    result["hub_peak_rss_mb"] = [round(h.memory_info().rss / 2**20, 1) for h in hubs]
    texts = [await scrape(url) for url in urls]
    result["event_loop"] = [lag_stats(text) for text in texts]
    result["gc"] = [gc_stats(text) for text in texts]
    result["agents_lost"] = sum(metric(text, "testfleet_agents_lost_total") for text in texts)
    result["failed_jobs"] = sum(
        metric(text, "testfleet_jobs_finished_total", 'state="failed"') for text in texts
    )
    sampling.cancel()
    result["healthz_ms"] = latency_stats([ms for _, ms in sampler.latencies], sampler.failures)
    result["healthz_ms_by_phase"] = {
        phase: latency_stats([ms for at, ms in sampler.latencies if start <= at <= end])
        for phase, (start, end) in phases.items()
    }
    result["stalls_over_100ms_by_phase"] = stalled
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=1000, help="agents in the swarm")
    parser.add_argument(
        "--jobs", type=int, default=1000, help="one-echo-step jobs submitted at once (0: none)"
    )
    parser.add_argument(
        "--backend", choices=["sqlite", "postgresql"], default="sqlite", help="the hubs' store"
    )
    parser.add_argument(
        "--hubs", type=int, default=1, help="hubs (2 or more need --backend postgresql)"
    )
    parser.add_argument(
        "--processes", type=int, default=4, help="processes the agents are spread over"
    )
    parser.add_argument("--idle", type=float, default=10.0, help="seconds of idle measurement")
    parser.add_argument(
        "--register-within",
        type=float,
        default=300.0,
        help="seconds the fleet may take to register before measuring goes on without it",
    )
    parser.add_argument(
        "--cross",
        action="store_true",
        help="the first hub runs every job, the agents connect to the last (several hubs)",
    )
    parser.add_argument(
        "--logs",
        type=Path,
        help="a directory to keep the hubs' logs in (stalls are logged there)",
    )
    args = parser.parse_args()
    if args.cross and args.hubs < 2:
        raise SystemExit("--cross needs --hubs 2 or more")
    if args.hubs > 1 and args.backend != "postgresql":
        raise SystemExit("several hubs share a PostgreSQL store: add --backend postgresql")
    result: dict[str, Any] = {
        "agents": args.agents,
        "hubs": args.hubs,
        "backend": args.backend,
        "cpus": os.cpu_count(),
        "cross": args.cross,
    }
    with tempfile.TemporaryDirectory(prefix="tf-swarm-") as tmp:

        def run(db_url: str | None) -> None:
            runs_none = ["--max-running-jobs", "0"] if args.cross else []
            hubs = [
                Hub(
                    Path(tmp) / f"hub{n}",
                    db_url=db_url,
                    extra=["--log-level", "warning", *(runs_none if n else [])],
                )
                for n in range(args.hubs)
            ]
            workers: list[Any] = []
            context = multiprocessing.get_context("spawn")
            ready, stop = context.Queue(), context.Event()
            try:
                for hub in hubs:
                    hub.workdir.mkdir(parents=True, exist_ok=True)
                    hub.start()
                share = -(-args.agents // args.processes)
                urls = [hub.url for hub in hubs]
                agent_urls = urls[-1:] if args.cross else urls
                started = time.monotonic()
                workers = [
                    context.Process(
                        target=run_agents,
                        args=(
                            agent_urls,
                            p * share,
                            min(share, args.agents - p * share),
                            p,
                            ready,
                            stop,
                        ),
                    )
                    for p in range(args.processes)
                    if p * share < args.agents
                ]
                for worker in workers:
                    worker.start()
                pids = [hub.process.pid for hub in hubs if hub.process is not None]
                result.update(asyncio.run(measure(urls, pids, args, ready, started)))
            finally:  # a hub that failed to start is stopped too
                stop.set()
                for worker in workers:
                    worker.join(60)
                    if worker.is_alive():
                        worker.kill()
                for hub in hubs:
                    try:
                        hub.stop(timeout=60)  # a hub with a large fleet has more to close
                    finally:  # kept most of all when a hub would not stop
                        if args.logs and hub.process is not None:
                            args.logs.mkdir(parents=True, exist_ok=True)
                            shutil.copy(hub.process.log_path, args.logs)

        if args.backend == "postgresql":
            with fresh_postgres() as url:
                run(url)
        else:
            run(None)
    json.dump(result, sys.stdout)
    print()


if __name__ == "__main__":
    main()
