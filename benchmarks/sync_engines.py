"""Which shared engine for the sync service: PostgreSQL (LISTEN/NOTIFY) or Redis streams?
Prints one JSON line (issue 12).

For each engine, the two things the sync service asks of it:
- notify latency: one counter increment (a signal_entry) committed on one connection, until
  another connection listening for changes hears it; p50/p95 over `--ops`;
- append throughput: `--messages` messages appended to one topic in batches of `--batch`
  (as the hub batches publishes), each batch with its sequence numbers and one notification.

PostgreSQL runs as the sync engine does (its own connections, synchronous_commit off, the
counter row locked per batch); Redis on 127.0.0.1:6379 (INCRBY for the numbers, XADD per
message and PUBLISH per batch, pipelined in a MULTI).

Usage: python -m benchmarks.sync_engines [--ops 500] [--messages 50000] [--batch 500]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

import asyncpg
import redis.asyncio as redis

from benchmarks.harness import fresh_postgres, percentile

SCHEMA = """
CREATE TABLE counters (name text PRIMARY KEY, value bigint NOT NULL);
CREATE TABLE messages (topic text, seq bigint, payload text, PRIMARY KEY (topic, seq));
"""


async def postgres(url: str, ops: int, messages: int, batch: int) -> dict[str, float]:
    dsn = url.replace("postgresql+asyncpg://", "postgresql://")
    settings = {"synchronous_commit": "off"}
    writer = await asyncpg.connect(dsn, server_settings=settings)
    listener = await asyncpg.connect(dsn)
    await writer.execute(SCHEMA)
    heard: asyncio.Queue[float] = asyncio.Queue()
    await listener.add_listener("bench", lambda *_: heard.put_nowait(time.perf_counter()))
    latencies = []
    for _ in range(ops):
        started = time.perf_counter()
        async with writer.transaction():
            value = await writer.fetchval(
                "INSERT INTO counters VALUES ('s', 1) ON CONFLICT (name) "
                "DO UPDATE SET value = counters.value + 1 RETURNING value"
            )
            await writer.execute("SELECT pg_notify('bench', $1)", f"s\t{value}")
        latencies.append((await heard.get() - started) * 1000)
    payload = json.dumps({"pad": "x" * 32})
    started = time.perf_counter()
    for _ in range(0, messages, batch):
        async with writer.transaction():
            last = await writer.fetchval(
                "INSERT INTO counters VALUES ('t', $1) ON CONFLICT (name) "
                "DO UPDATE SET value = counters.value + $1 RETURNING value",
                batch,
            )
            rows = [("t", seq, payload) for seq in range(last - batch + 1, last + 1)]
            await writer.copy_records_to_table("messages", records=rows)
            await writer.execute("SELECT pg_notify('bench', $1)", f"t\t{last}")
        await heard.get()
    seconds = time.perf_counter() - started
    await writer.close()
    await listener.close()
    return _figures(latencies, messages, seconds)


async def redis_streams(ops: int, messages: int, batch: int) -> dict[str, float]:
    client = redis.Redis(host="127.0.0.1", port=6379)
    prefix = f"tfbench:{time.time_ns()}"
    pubsub = client.pubsub()
    await pubsub.subscribe(f"{prefix}:changes")
    await pubsub.get_message(timeout=1)  # the subscribe confirmation
    latencies = []
    try:
        for _ in range(ops):
            started = time.perf_counter()
            value = await client.incr(f"{prefix}:s")
            await client.publish(f"{prefix}:changes", f"s\t{value}")
            while await pubsub.get_message(timeout=5) is None:
                pass
            latencies.append((time.perf_counter() - started) * 1000)
        payload = json.dumps({"pad": "x" * 32})
        started = time.perf_counter()
        for _ in range(0, messages, batch):
            last = await client.incrby(f"{prefix}:t", batch)
            async with client.pipeline(transaction=True) as pipe:
                for seq in range(last - batch + 1, last + 1):
                    pipe.xadd(f"{prefix}:topic", {"p": payload}, id=f"0-{seq}")
                pipe.publish(f"{prefix}:changes", f"t\t{last}")
                await pipe.execute()
            while await pubsub.get_message(timeout=5) is None:
                pass
        seconds = time.perf_counter() - started
    finally:
        keys = [f"{prefix}:s", f"{prefix}:t", f"{prefix}:topic"]
        await client.delete(*keys)
        await pubsub.aclose()
        await client.aclose()
    return _figures(latencies, messages, seconds)


def _figures(latencies: list[float], messages: int, seconds: float) -> dict[str, float]:
    return {
        "notify_p50_ms": round(percentile(latencies, 50), 3),
        "notify_p95_ms": round(percentile(latencies, 95), 3),
        "append_per_s": round(messages / seconds),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=500)
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    result: dict[str, Any] = {}
    with fresh_postgres() as url:
        result["postgresql"] = asyncio.run(postgres(url, args.ops, args.messages, args.batch))
    result["redis"] = asyncio.run(redis_streams(args.ops, args.messages, args.batch))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
