"""The jobs page's first paint with 20,000 jobs in the store, measured in Chromium; the UI's
compressed weight; and the job list's API at any depth of the history.

    python -m benchmarks.ui_first_paint [--jobs 20000] [--loads 15]

Prints one JSON line. Each load is a new browser context (empty cache, no cookies: "cold"),
then a reload in it ("warm": the immutable assets cached): the time from navigation start to
the first contentful paint, and to the jobs table painted (the UI's `testfleet:jobs-rendered`
mark, then the next frame).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import sync_playwright
from sqlalchemy import Connection, insert
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.support.processes import Hub

from benchmarks.harness import percentile
from testfleet.hub.web import UiFiles
from testfleet.store.db import Store, sqlite_url
from testfleet.store.tables import job_tags, jobs

STATES = ["completed"] * 14 + ["failed"] * 4 + ["cancelled"] * 2
DESCRIPTOR = {
    "name": "seeded",
    "tests": [{"name": "t", "steps": [{"name": "s", "plugin": "echo"}]}],
}


def _rows(count: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    rng = random.Random(7)
    now = datetime.now(UTC)
    rows, tags = [], []
    for n in range(count):
        created = now - timedelta(seconds=(count - n) * 120)
        started = created + timedelta(seconds=rng.uniform(0, 5))
        tag = rng.choice(["nightly", "smoke", "perf", "release"])
        rows.append(
            {
                "id": n + 1,
                "name": f"{tag}-{rng.choice(['linux', 'android', 'chrome'])}-{n % 97}",
                "state": rng.choice(STATES),
                "requestor": rng.choice(["alice", "bob", "ci", "nightly-bot"]),
                "descriptor": DESCRIPTOR,
                "tags": [tag],
                "runs_requested": 1,
                "created_at": created,
                "started_at": started,
                "ended_at": started + timedelta(seconds=rng.uniform(1, 900)),
                "stop_requested": False,
            }
        )
        tags.append({"job_id": n + 1, "tag": tag})
    return rows, tags


def seed(data_dir: Path, count: int) -> None:
    """`count` finished jobs over the last weeks, straight into the store."""
    rows, tags = _rows(count)

    def write(conn: Connection) -> None:
        for start in range(0, count, 2000):
            conn.execute(insert(jobs), rows[start : start + 2000])
            conn.execute(insert(job_tags), tags[start : start + 2000])

    async def main() -> None:
        store = await Store.open(sqlite_url(data_dir))
        try:
            await store.write(write)
        finally:
            await store.close()

    asyncio.run(main())


PAINTED = """async () => {
    const mark = "testfleet:jobs-rendered";
    while (!performance.getEntriesByName(mark).length) await new Promise(r => setTimeout(r, 5));
    await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
    const rendered = performance.getEntriesByName(mark)[0].startTime;
    const fcp = performance.getEntriesByName("first-contentful-paint")[0]?.startTime ?? null;
    const bytes = performance.getEntriesByType("resource")
        .concat(performance.getEntriesByType("navigation"))
        .reduce((sum, e) => sum + (e.transferSize || 0), 0);
    return {rendered, fcp, bytes, rows: document.querySelectorAll("[data-job]").length};
}"""


def measure_loads(url: str, loads: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Each load in a new context (cold: nothing cached), then reloaded (warm: the assets
    cached, as for anyone who opened the UI before)."""
    cold, warm = [], []
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for _ in range(loads + 1):  # the first load warms the hub's caches, not counted
                context = browser.new_context(viewport={"width": 1280, "height": 860})
                page = context.new_page()
                page.goto(f"{url}/ui/jobs")
                cold.append(page.evaluate(PAINTED))
                page.reload()
                warm.append(page.evaluate(PAINTED))
                context.close()
        finally:
            browser.close()
    return cold[1:], warm[1:]


def api_timings(url: str) -> dict[str, float]:
    """Milliseconds (median of 20) for pages of the job list: the newest, one deep in the
    history, and filtered ones."""
    with httpx.Client(base_url=url, timeout=30) as client:
        deep = client.get("/api/v1/jobs", params={"limit": 50}).json()["next_cursor"]
        for _ in range(300):  # walk 300 pages down
            deep = client.get("/api/v1/jobs", params={"limit": 50, "cursor": deep}).json()[
                "next_cursor"
            ]
        cases = {
            "newest": {},
            "page_301": {"cursor": deep},
            "state_failed": {"state": "failed"},
            "tag_perf": {"tag": "perf"},
            "name_contains": {"name_contains": "ANDROID-4"},
            "last_24h": {"created_after": (datetime.now(UTC) - timedelta(days=1)).isoformat()},
        }
        out = {}
        for name, params in cases.items():
            times = []
            for _ in range(20):
                began = time.perf_counter()
                assert client.get("/api/v1/jobs", params={"limit": 50, **params}).is_success
                times.append((time.perf_counter() - began) * 1000)
            out[name] = round(statistics.median(times), 2)
        began = time.perf_counter()
        client.get("/api/v1/overview").raise_for_status()
        out["overview"] = round((time.perf_counter() - began) * 1000, 2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--loads", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        seed(workdir / "data", args.jobs)
        hub = Hub(workdir, extra=["--log-level", "warning", "--max-running-jobs", "0"]).start()
        try:
            loads, warm_loads = measure_loads(hub.url, args.loads)
            api = api_timings(hub.url)
        finally:
            hub.stop()
    rendered = [load["rendered"] for load in loads]
    warm = [load["rendered"] for load in warm_loads]
    fcp = [load["fcp"] for load in loads if load["fcp"] is not None]
    print(
        json.dumps(
            {
                "benchmark": "ui_first_paint",
                "jobs_in_store": args.jobs,
                "loads": len(loads),
                "jobs_table_painted_ms_p50": round(statistics.median(rendered), 1),
                "jobs_table_painted_ms_p95": round(percentile(rendered, 95), 1),
                "warm_jobs_table_painted_ms_p50": round(statistics.median(warm), 1),
                "warm_jobs_table_painted_ms_p95": round(percentile(warm, 95), 1),
                "first_contentful_paint_ms_p50": round(statistics.median(fcp), 1) if fcp else None,
                "rows_shown": loads[0]["rows"],
                "transferred_bytes_jobs_page": loads[0]["bytes"],
                "ui_assets_compressed_bytes": UiFiles().compressed_size(),
                "api_ms": api,
                "cpus": os.cpu_count(),
            }
        )
    )


if __name__ == "__main__":
    main()
