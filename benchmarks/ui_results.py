"""The results pages of the web UI; prints one JSON line.

- the UI's weight, gzip-compressed: every file, and what the job page (with its test report
  and artifacts) and the schedules and webhooks pages load;
- the lab watch's fingerprint (read at most five times a second while a page watches), whole
  and the part the schedules and webhooks topics added, with `--schedules` schedules,
  `--webhooks` webhooks and `--deliveries` deliveries (one attempt each) in the store, on
  SQLite and PostgreSQL; p50 / p95 of `--reads` reads.

Usage: python -m benchmarks.ui_results [--deliveries 100000] [--no-postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, insert, select

from benchmarks.harness import fresh_postgres, percentile
from testfleet.hub.live.lab_watch import SCHEDULE_PRINT, WEBHOOK_PRINT, read_print
from testfleet.hub.web import ENTRY, UiFiles, imported_by
from testfleet.store import Store
from testfleet.store.tables import schedules, webhook_attempts, webhook_deliveries, webhooks

NOW = datetime(2025, 1, 1, tzinfo=UTC)
BATCH = 5000


def weights() -> dict[str, int]:
    """Compressed bytes of every file, and of each results page with the start modules."""
    files = UiFiles()

    def size(names: set[str]) -> int:
        found = [files.asset(name) for name in names]
        return sum(len(a.gzipped or a.body) for a in found if a is not None)

    start = imported_by(files.graph, ENTRY) | {"css/app.css"}
    pages = {"job": "js/pages/job.js", "schedules": "js/pages/schedules.js"}
    pages |= {"webhook": "js/pages/webhook.js", "testcases": "js/pages/testcases.js"}
    result = {"ui_compressed_bytes": files.compressed_size()}
    for page, module in pages.items():
        result[f"{page}_page_bytes"] = size(start | imported_by(files.graph, module))
    return result


def fill(conn: Connection, counts: dict[str, int]) -> None:
    """Schedules, webhooks, and deliveries spread over the webhooks, one attempt each."""
    conn.execute(
        insert(schedules),
        [
            {
                "name": f"s{n}",
                "cron": "0 2 * * *",
                "timezone": "UTC",
                "descriptor": {"name": "s", "tests": []},
                "params": {},
                "missed": "once",
                "enabled": n % 3 != 0,
                "next_fire_at": NOW + timedelta(minutes=n),
                "created_at": NOW,
            }
            for n in range(counts["schedules"])
        ],
    )
    hooks = [
        {
            "url": f"http://127.0.0.1:9/{n}",
            "secret": "s" * 32,
            "events": ["job.failed"],
            "tags": [],
            "description": "",
            "active": True,
            "created_at": NOW,
        }
        for n in range(counts["webhooks"])
    ]
    conn.execute(insert(webhooks), hooks)
    ids = list(conn.execute(select(webhooks.c.id)).scalars())
    for first in range(0, counts["deliveries"], BATCH):
        rows = [
            {
                "webhook_id": ids[n % len(ids)],
                "event": "job.failed",
                "event_id": n,
                "payload": {"event": "job.failed"},
                "state": "delivered",
                "attempts": 1,
                "created_at": NOW,
            }
            for n in range(first, min(first + BATCH, counts["deliveries"]))
        ]
        conn.execute(insert(webhook_deliveries), rows)
    delivery_ids = list(conn.execute(select(webhook_deliveries.c.id)).scalars())
    for first in range(0, len(delivery_ids), BATCH):
        attempts = [
            {"delivery_id": d, "number": 1, "at": NOW, "hub": "h", "duration_ms": 1.0}
            for d in delivery_ids[first : first + BATCH]
        ]
        conn.execute(insert(webhook_attempts), attempts)


def automation_only(conn: Connection) -> Any:
    return conn.execute(select(*SCHEDULE_PRINT, *WEBHOOK_PRINT)).one()


async def fingerprint(url: str, counts: dict[str, int], reads: int) -> dict[str, float]:
    store = await Store.open(url)
    try:
        await store.write(fill, counts)
        result: dict[str, float] = {}
        for name, read in (("lab_print", read_print), ("automation_part", automation_only)):
            times = []
            for _ in range(reads):
                began = time.perf_counter()
                await store.read(read)
                times.append((time.perf_counter() - began) * 1000)
            result[f"{name}_p50_ms"] = round(percentile(times, 50), 3)
            result[f"{name}_p95_ms"] = round(percentile(times, 95), 3)
        return result
    finally:
        await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schedules", type=int, default=500)
    parser.add_argument("--webhooks", type=int, default=50)
    parser.add_argument("--deliveries", type=int, default=100_000)
    parser.add_argument("--reads", type=int, default=500)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    counts = {"schedules": args.schedules, "webhooks": args.webhooks}
    counts["deliveries"] = args.deliveries
    result: dict[str, Any] = {"cpus": os.cpu_count(), **counts, **weights()}
    with tempfile.TemporaryDirectory() as folder:
        sqlite = f"sqlite:///{Path(folder) / 'bench.db'}"
        found = asyncio.run(fingerprint(sqlite, counts, args.reads))
        result |= {f"sqlite_{key}": value for key, value in found.items()}
    if not args.no_postgres:
        with fresh_postgres() as url:
            found = asyncio.run(fingerprint(url, counts, args.reads))
            result |= {f"postgres_{key}": value for key, value in found.items()}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
