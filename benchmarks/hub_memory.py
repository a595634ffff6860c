"""Where a hub's memory per agent connection goes (issue 8). Prints one JSON line.

The hub runs in this process (uvicorn in a thread, SQLite in a temporary directory) with
`tracemalloc` on; `--agents` real agents (`testfleet.agent.Agent`, 1-4 slots each) run in
`--processes` other processes, so every allocation traced here is the hub's. Compares a
snapshot with the fleet connected and idle against one taken before the first agent came,
and reports bytes per connection in all, by file, and by the line that allocated them
(`--top` of each), with the process's resident memory before and after.

Usage: python -m benchmarks.hub_memory [--agents 1000] [--processes 2] [--top 15]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import multiprocessing
import os
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

import httpx
import psutil
from tests.support.processes import free_port

from benchmarks.swarm import run_agents


def serve_in_thread(data_dir: Path, port: int) -> Any:
    """Start a hub on `port` in a thread; returns its uvicorn server once it answers."""
    from testfleet.hub.config import HubConfig
    from testfleet.hub.server import build_server

    server = build_server(HubConfig(port=port, data_dir=data_dir, auth=False), log_level="warning")
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return server, thread
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit("the hub did not start")


def connected(port: int) -> int:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=30).text
    for line in text.splitlines():
        if line.startswith("testfleet_agents_connected "):
            return int(float(line.split()[1]))
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--frames", type=int, default=1, help="traceback depth traced")
    args = parser.parse_args()
    me = psutil.Process()
    tracemalloc.start(args.frames)
    with tempfile.TemporaryDirectory(prefix="tf-hubmem-") as tmp:
        port = free_port()
        server, thread = serve_in_thread(Path(tmp) / "data", port)
        time.sleep(2)
        gc.collect()
        before = tracemalloc.take_snapshot()
        rss_before = me.memory_info().rss
        context = multiprocessing.get_context("spawn")
        ready, stop = context.Queue(), context.Event()
        share = -(-args.agents // args.processes)
        url = f"http://127.0.0.1:{port}"
        workers = [
            context.Process(
                target=run_agents,
                args=([url], p * share, min(share, args.agents - p * share), p, ready, stop),
            )
            for p in range(args.processes)
            if p * share < args.agents
        ]
        for worker in workers:
            worker.start()
        deadline = time.monotonic() + 600
        while connected(port) < args.agents and time.monotonic() < deadline:
            time.sleep(1)
        count = connected(port)
        time.sleep(15)  # idle: a few heartbeats each
        gc.collect()
        after = tracemalloc.take_snapshot()
        rss_after = me.memory_info().rss
        filters = [tracemalloc.Filter(False, tracemalloc.__file__)]
        before, after = before.filter_traces(filters), after.filter_traces(filters)
        total = sum(s.size_diff for s in after.compare_to(before, "filename"))

        def top(key: str) -> list[dict[str, Any]]:
            rows = after.compare_to(before, key)[: args.top]
            return [
                {
                    "where": str(row.traceback[0])
                    if key == "lineno"
                    else row.traceback[0].filename,
                    "bytes_per_agent": round(row.size_diff / max(count, 1)),
                    "blocks_per_agent": round(row.count_diff / max(count, 1), 2),
                }
                for row in rows
            ]

        result = {
            "agents": args.agents,
            "connected": count,
            "cpus": os.cpu_count(),
            "traced_bytes_per_agent": round(total / max(count, 1)),
            "rss_bytes_per_agent": round((rss_after - rss_before) / max(count, 1)),
            "rss_mb": round(rss_after / 2**20, 1),
            "by_file": top("filename"),
            "by_line": top("lineno"),
        }
        stop.set()
        for worker in workers:
            worker.join(60)
            if worker.is_alive():
                worker.kill()
        server.should_exit = True
        thread.join(30)
    json.dump(result, sys.stdout)
    print()


if __name__ == "__main__":
    main()
