"""The results pages of the web UI; prints one JSON line.

- the UI's weight, gzip-compressed: every file, and what the job page (with its test report
  and artifacts) and the schedules and webhooks pages load;
- the lab watch's fingerprint (read at most five times a second while a page watches), whole,
  the part the schedules and webhooks topics added, and the part the sessions, plans and
  coverage topics added, with `--schedules` schedules, `--webhooks` webhooks, `--deliveries`
  deliveries (one attempt each), `--sessions` ended gateway sessions (ten commands each) and
  `--plan-tasks` finished plan tasks in the store, on SQLite and PostgreSQL; p50 / p95 of
  `--reads` reads.

Usage: python -m benchmarks.ui_results [--deliveries 100000] [--sessions 10000] [--no-postgres]
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
from testfleet.hub.live.lab_watch import (
    COVERAGE_PRINT,
    PLAN_PRINT,
    SCHEDULE_PRINT,
    SESSION_PRINT,
    WEBHOOK_PRINT,
    read_print,
)
from testfleet.hub.web import ENTRY, UiFiles, imported_by
from testfleet.store import Store
from testfleet.store.tables import (
    driver_sessions,
    plan_tasks,
    schedules,
    session_commands,
    webhook_attempts,
    webhook_deliveries,
    webhooks,
)

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
    pages |= {"sessions": "js/pages/sessions.js", "plan_run": "js/pages/plan-task.js"}
    pages |= {"coverage_session": "js/pages/coverage-session.js"}
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


def farm_only(conn: Connection) -> Any:
    return conn.execute(select(*SESSION_PRINT, *PLAN_PRINT, *COVERAGE_PRINT)).one()


def fill_farm(conn: Connection, counts: dict[str, int]) -> None:
    """Ended gateway sessions with ten commands each, and finished plan tasks."""
    for first in range(0, counts["sessions"], BATCH):
        rows = [
            {
                "session_id": f"wd-{n}",
                "state": "ended",
                "requestor": "bench",
                "requested": {},
                "priority": 0,
                "browser": False,
                "created_at": NOW,
                "ended_at": NOW,
                "idle_timeout": 60,
                "commands": 10,
            }
            for n in range(first, min(first + BATCH, counts["sessions"]))
        ]
        conn.execute(insert(driver_sessions), rows)
    ids = list(conn.execute(select(driver_sessions.c.id)).scalars())
    command = {"at": NOW, "method": "GET", "command": "GET /title", "status": 200}
    for first in range(0, len(ids), BATCH // 10):
        commands = [
            {**command, "session_id": i, "duration_ms": 1.0}
            for i in ids[first : first + BATCH // 10]
            for _ in range(10)
        ]
        conn.execute(insert(session_commands), commands)
    conn.execute(
        insert(plan_tasks),
        [
            {
                "id": f"task-{n}",
                "type": "run",
                "plan": "ping",
                "case": "ping",
                "runner": "local:exec",
                "builder": "exec:python",
                "state": "complete",
                "states": [],
                "composition": {},
                "log": "",
                "requestor": "bench",
                "server_id": "bench",
                "created_at": NOW + timedelta(seconds=n),
                "ended_at": NOW + timedelta(seconds=n),
            }
            for n in range(counts["plan_tasks"])
        ],
    )


async def fingerprint(url: str, counts: dict[str, int], reads: int) -> dict[str, float]:
    store = await Store.open(url)
    try:
        await store.write(fill, counts)
        await store.write(fill_farm, counts)
        result: dict[str, float] = {}
        parts = (
            ("lab_print", read_print),
            ("automation_part", automation_only),
            ("farm_part", farm_only),
        )
        for name, read in parts:
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
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--plan-tasks", type=int, default=1_000)
    parser.add_argument("--reads", type=int, default=500)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    counts = {"schedules": args.schedules, "webhooks": args.webhooks}
    counts["deliveries"] = args.deliveries
    counts |= {"sessions": args.sessions, "plan_tasks": args.plan_tasks}
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
