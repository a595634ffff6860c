"""Test plan figures (issue 12); prints one JSON line.

- barrier: `--clients` sync clients (200) wait at a barrier of them all; the last one signals;
  the release latency of each is the time from that last entry being sent to its barrier's
  answer arriving. Rounds are repeated (`--rounds`); p50 and p95 over every client and round.
- pubsub: one publisher sends `--messages` messages (pipelined) to a topic with 10
  subscribers; messages/s is messages over the time until every subscriber had them all.
- ping: `--instances` (100) local:exec instances of examples/plans/ping, POST /run to outcome.

On PostgreSQL with `--hubs 2` the clients (and subscribers) are spread over two hubs.

Usage: python -m benchmarks.plans [--backend sqlite|postgresql] [--hubs 1|2] [--skip-ping]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
from tests.support.processes import Agent, Hub, wait_until

from benchmarks.harness import fresh_postgres, percentile
from testfleet.sdk import SyncClient
from testfleet.steps.plan.archive import zip_directory

ROOT = Path(__file__).resolve().parents[1]


def ws(hub: Hub, run: str) -> str:
    return hub.url.replace("http://", "ws://") + f"/api/v1/sync/{run}"


async def barrier(hubs: list[Hub], clients: int, rounds: int) -> dict[str, float]:
    connected = [SyncClient(ws(hubs[i % len(hubs)], "bench-barrier")) for i in range(clients)]
    await asyncio.gather(*(c.connect() for c in connected))
    latencies: list[float] = []
    try:
        for round_ in range(rounds):
            state = f"round-{round_}"
            released: list[float] = []

            async def wait(client: SyncClient) -> None:
                await client.barrier(state, clients, timeout=60)  # noqa: B023
                released.append(time.perf_counter())  # noqa: B023

            waiters = [asyncio.ensure_future(wait(c)) for c in connected]
            await asyncio.sleep(0.3)  # every barrier registered
            await asyncio.gather(*(c.signal_entry(state) for c in connected[:-1]))
            last_entry = time.perf_counter()
            await connected[-1].signal_entry(state)
            await asyncio.gather(*waiters)
            latencies += [(t - last_entry) * 1000 for t in released]
    finally:
        await asyncio.gather(*(c.close() for c in connected))
    return {
        "barrier_clients": clients,
        "barrier_rounds": rounds,
        "barrier_release_p50_ms": round(percentile(latencies, 50), 2),
        "barrier_release_p95_ms": round(percentile(latencies, 95), 2),
        "barrier_release_max_ms": round(max(latencies), 2),
    }


async def pubsub(
    hubs: list[Hub], messages: int, subscribers: int, window: int, chunk: int
) -> dict[str, float]:
    run = f"bench-pubsub-{time.time_ns()}"
    publisher = SyncClient(ws(hubs[0], run))
    readers = [SyncClient(ws(hubs[(i + 1) % len(hubs)], run)) for i in range(subscribers)]
    await asyncio.gather(publisher.connect(), *(r.connect() for r in readers))
    try:
        subscriptions = [await r.subscribe("flood") for r in readers]

        async def drain(subscription: Any) -> float:
            seen = 0
            while seen < messages:
                seq, _ = await subscription.next(timeout=120)
                seen = seq
            return time.perf_counter()

        drains = [asyncio.ensure_future(drain(s)) for s in subscriptions]
        started = time.perf_counter()
        room = asyncio.Semaphore(max(1, window // chunk))  # at most `window` unanswered
        sent: list[asyncio.Future[Any]] = []
        for first in range(0, messages, chunk):
            await room.acquire()
            payloads = [
                {"n": n, "pad": "x" * 32} for n in range(first, min(first + chunk, messages))
            ]
            future: asyncio.Future[Any] = (
                publisher.publish("flood", payloads[0])  # one message: no task needed
                if chunk == 1
                else asyncio.ensure_future(publisher.publish_many("flood", payloads))
            )
            future.add_done_callback(lambda _: room.release())
            sent.append(future)
        await asyncio.gather(*sent)
        published = time.perf_counter()
        ends = await asyncio.gather(*drains)
    finally:
        await asyncio.gather(publisher.close(), *(r.close() for r in readers))
    elapsed = max(ends) - started
    return {
        "pubsub_messages": messages,
        "pubsub_subscribers": subscribers,
        "pubsub_chunk": chunk,
        "pubsub_publish_per_s": round(messages / (published - started)),
        "pubsub_messages_per_s": round(messages / elapsed),
        "pubsub_deliveries_per_s": round(messages * subscribers / elapsed),
    }


def ping_run(workdir: Path, hub: Hub, instances: int) -> dict[str, float]:
    agent = Agent(
        workdir, hub.url, "bench-local", slots=1, extra=["--cache-dir", str(workdir / "c")]
    )
    agent.start()
    try:
        with httpx.Client(base_url=hub.url, timeout=60) as client:
            agent.wait_online(client)
            data = zip_directory(ROOT / "examples" / "plans" / "ping")
            client.post("/api/v1/plans", content=data, headers={"Content-Type": "application/zip"})
            composition = {
                "global": {
                    "plan": "ping",
                    "case": "ping",
                    "total_instances": instances,
                    "runner": "local:exec",
                },
                "groups": [{"id": "all", "instances": {"count": instances}}],
            }
            started = time.perf_counter()
            task_id = client.post("/run", json=composition).json()["task_id"]
            status: dict[str, Any] = {}

            def done() -> bool:
                status.update(client.post("/status", json={"task_id": task_id}).json())
                return status["states"][-1]["state"] in ("complete", "canceled")

            wait_until(done, 300, 0.1, "the ping run")
            seconds = time.perf_counter() - started
    finally:
        agent.stop()
    outcome = status["result"]
    return {
        "ping_instances": instances,
        "ping_seconds": round(seconds, 2),
        "ping_outcome": outcome["outcome"],
        "ping_ok": outcome["outcomes"]["all"]["ok"],
        **({"ping_error": status["error"]} if status.get("error") else {}),
    }


@contextlib.contextmanager
def hubs_on(workdir: Path, backend: str, count: int) -> Iterator[list[Hub]]:
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(fresh_postgres()) if backend == "postgresql" else None
        started = []
        for index in range(count):
            extra = ["--log-level", "warning", "--local-agent", "bench-local"]
            if index:
                extra += ["--max-running-jobs", "0"]
            hub = Hub(workdir / f"hub{index}", db_url=url, extra=extra)
            (workdir / f"hub{index}").mkdir()
            started.append(hub.start())
            stack.callback(hub.stop)
        yield started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--hubs", type=int, default=1)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--subscribers", type=int, default=10)
    parser.add_argument("--window", type=int, default=2000)
    parser.add_argument("--chunk", type=int, default=1, help="messages per publish_many call")
    parser.add_argument("--instances", type=int, default=100)
    parser.add_argument("--skip-ping", action="store_true")
    args = parser.parse_args()
    if args.hubs > 1 and args.backend != "postgresql":
        raise SystemExit("several hubs need --backend postgresql")
    result: dict[str, Any] = {"backend": args.backend, "hubs": args.hubs}
    with tempfile.TemporaryDirectory() as tmp, hubs_on(Path(tmp), args.backend, args.hubs) as hubs:
        result.update(asyncio.run(barrier(hubs, args.clients, args.rounds)))
        hub_cpu = [psutil.Process(h.process.pid).cpu_times() for h in hubs if h.process]
        own_cpu = psutil.Process().cpu_times()
        result.update(
            asyncio.run(pubsub(hubs, args.messages, args.subscribers, args.window, args.chunk))
        )
        hub_after = [psutil.Process(h.process.pid).cpu_times() for h in hubs if h.process]
        own_after = psutil.Process().cpu_times()
        result["pubsub_hub_cpu_s"] = round(
            sum(
                a.user + a.system - b.user - b.system
                for a, b in zip(hub_after, hub_cpu, strict=True)
            ),
            2,
        )
        result["pubsub_clients_cpu_s"] = round(
            own_after.user + own_after.system - own_cpu.user - own_cpu.system, 2
        )
        if not args.skip_ping:
            result.update(ping_run(Path(tmp), hubs[0], args.instances))
    print(json.dumps(result), flush=True)
    sys.exit(0)


if __name__ == "__main__":
    main()
