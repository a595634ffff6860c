"""Issue 14's figures; prints one JSON line.

- artifact upload agent -> hub over loopback (a real agent process uploads a file its step
  wrote): MB/s from the hub's announce to the file checked and stored, and the hub's and
  agent's peak resident memory growth while it streams;
- a JUnit file of 10,000 cases parsed and stored (SQLite and PostgreSQL);
- `GET /api/v1/jobs` (first page) and a job's status with 100,000 jobs in the store, p50/p95.

Usage: python -m benchmarks.results [--size-mb 1024] [--jobs 100000] [--no-postgres]
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

import httpx
from sqlalchemy import Connection, insert
from tests.support.jobs import start, wait_state
from tests.support.memory import PeakRss
from tests.support.processes import Hub

from benchmarks.harness import fresh_postgres, lab, percentile
from testfleet.hub.reports.junit import parse_junit
from testfleet.store import Store
from testfleet.store import testcases as case_store
from testfleet.store.tables import (
    artifacts,
    events,
    job_runs,
    job_tags,
    job_tests,
    jobs,
    steps,
    tasks,
)

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def artifact_upload(workdir: Path, size_mb: int) -> dict[str, Any]:
    """One file of `size_mb` MiB, written by a step and uploaded by a real agent."""
    code = (
        "import os\n"
        "block = os.urandom(1 << 20)\n"
        "with open('big.bin', 'wb') as f:\n"
        f"    for _ in range({size_mb}):\n"
        "        f.write(block)\n"
    )
    job = {
        "name": "upload",
        "tests": [
            {
                "name": "t",
                "steps": [
                    {
                        "name": "make",
                        "plugin": "cmd",
                        "params": {"executable": "python3", "args": ["-c", code]},
                        "artifacts": ["big.bin"],
                    }
                ],
            }
        ],
    }
    workdir.mkdir(parents=True, exist_ok=True)
    with lab(workdir, agents=1, slots=1) as (hub, agents):
        assert hub.process is not None and agents[0].process is not None
        hub_peak, agent_peak = PeakRss(hub.process.pid), PeakRss(agents[0].process.pid)
        with httpx.Client(base_url=hub.url, timeout=60) as client:
            job_id = start(client, job)
            status = wait_state(client, job_id, timeout=600)
            assert status["state"] == "completed", status
            [artifact] = client.get(f"/api/v1/jobs/{job_id}/artifacts").json()["artifacts"]
        db = workdir / "data" / "testfleet.db"
        started, ended = _upload_times(str(db), artifact["artifact_id"])
    seconds = (ended - started).total_seconds()
    return {
        "artifact_mb": size_mb,
        "artifact_upload_mb_s": round(size_mb * 1.048576 / seconds, 1),
        "artifact_upload_s": round(seconds, 2),
        "hub_rss_growth_mb": round(hub_peak.stop() / 2**20, 1),
        "agent_rss_growth_mb": round(agent_peak.stop() / 2**20, 1),
    }


def _upload_times(path: str, artifact_id: int) -> tuple[datetime, datetime]:
    import sqlite3

    with sqlite3.connect(path) as conn:
        created, completed = conn.execute(
            "SELECT created_at, completed_at FROM artifacts WHERE id = ?", (artifact_id,)
        ).fetchone()
    return datetime.fromisoformat(created), datetime.fromisoformat(completed)


def junit_10k() -> bytes:
    cases = "".join(
        f'<testcase classname="pkg.mod{i % 50}" name="test_{i}" time="0.01">'
        + ('<failure message="boom">trace</failure>' if i % 100 == 0 else "")
        + "</testcase>"
        for i in range(10_000)
    )
    return f'<testsuites><testsuite name="big">{cases}</testsuite></testsuites>'.encode()


async def junit_store(url: str) -> float:
    """Seconds to parse 10,000 cases and store them (one job, one artifact)."""
    store = await Store.open(url)
    try:
        artifact_id, job_id, task_id = await store.write(_one_job_with_artifact)
        data = junit_10k()
        started = time.perf_counter()
        cases = await asyncio.to_thread(parse_junit, data)
        rows = [case.__dict__ for case in cases]
        await store.write(
            case_store.insert_cases,
            job_id=job_id,
            job_name="bench",
            artifact_id=artifact_id,
            task_id=task_id,
            cases=rows,
            now=NOW,
        )
        return time.perf_counter() - started
    finally:
        await store.close()


def _one_job_with_artifact(conn: Connection) -> tuple[int, int, int]:
    _agent(conn)
    _fill(conn, 0, 1)
    row = conn.execute(
        insert(artifacts)
        .values(
            job_id=1,
            task_id=1,
            step_index=0,
            path="r.xml",
            size=1,
            sha256="0" * 64,
            state="complete",
            created_at=NOW,
        )
        .returning(artifacts.c.id)
    ).one()
    return int(row.id), 1, 1


def _fill(conn: Connection, first: int, count: int) -> None:
    """`count` finished jobs from id `first + 1`: a run, a test, a task, two steps, events."""
    job_rows, tag_rows, run_rows, test_rows, task_rows, step_rows, event_rows = (
        [] for _ in range(7)
    )
    for job_id in range(first + 1, first + count + 1):
        at = NOW - timedelta(seconds=count - job_id)
        job_rows.append(
            {
                "id": job_id,
                "name": f"job-{job_id % 100}",
                "state": "completed",
                "requestor": "bench",
                "descriptor": {"name": "x", "tests": []},
                "tags": ["nightly"],
                "runs_requested": 1,
                "created_at": at,
                "started_at": at,
                "ended_at": at,
                "stop_requested": False,
            }
        )
        tag_rows.append({"job_id": job_id, "tag": "nightly"})
        run_rows.append(
            {
                "job_id": job_id,
                "number": 1,
                "state": "passed",
                "started_at": at,
                "ended_at": at,
                "reporters": [],
            }
        )
        test_rows.append(
            {
                "job_id": job_id,
                "run": 1,
                "test_index": 0,
                "name": "t",
                "state": "passed",
                "attempts": 1,
                "started_at": at,
                "ended_at": at,
            }
        )
        task_rows.append(
            {
                "id": job_id,
                "job_id": job_id,
                "run": 1,
                "test_index": 0,
                "attempt": 1,
                "device_id": "1/slot-0",
                "device_name": "slot-0",
                "agent_id": 1,
                "state": "passed",
                "started_at": at,
                "ended_at": at,
            }
        )
        for idx in range(2):
            step_rows.append(
                {
                    "task_id": job_id,
                    "idx": idx,
                    "name": f"s{idx}",
                    "plugin": "echo",
                    "state": "passed",
                    "exit_code": 0,
                    "started_at": at,
                    "ended_at": at,
                }
            )
        for kind in ("job_queued", "job_started", "job_finished"):
            event_rows.append({"kind": kind, "job_id": job_id, "at": at, "data": {}})
    for table, rows in (
        (jobs, job_rows),
        (job_tags, tag_rows),
        (job_runs, run_rows),
        (job_tests, test_rows),
        (tasks, task_rows),
        (steps, step_rows),
        (events, event_rows),
    ):
        conn.execute(insert(table), rows)


def _agent(conn: Connection) -> None:
    from testfleet.store import agents as agent_store

    agent_store.register_agent(
        conn, name="bench", instance_id="i", version="x", labels={}, hub="h", now=NOW
    )


async def fill_store(url: str, count: int) -> None:
    store = await Store.open(url)
    try:
        await store.write(_agent)
        for first in range(0, count, 5000):
            await store.write(_fill, first, min(5000, count - first))
        if store.is_postgres:
            await store.write(lambda c: c.exec_driver_sql(_SEQUENCE))
            await store.write(lambda c: c.exec_driver_sql("ANALYZE"))
    finally:
        await store.close()


_SEQUENCE = "SELECT setval(pg_get_serial_sequence('jobs', 'id'), (SELECT max(id) FROM jobs))"


def api_latency(workdir: Path, url: str | None, count: int) -> dict[str, float]:
    """p50/p95 ms of the first page of jobs and of a job's status, `count` jobs stored."""
    workdir.mkdir(parents=True, exist_ok=True)
    hub = Hub(workdir, db_url=url, extra=["--log-level", "warning", "--max-running-jobs", "0"])
    hub.start()
    try:
        with httpx.Client(base_url=hub.url, timeout=30) as client:
            timings: dict[str, list[float]] = {"list": [], "status": []}
            for index in range(60):
                for name, path in (
                    ("list", "/api/v1/jobs"),
                    ("status", f"/api/v1/jobs/{count - (index * 997) % count}"),
                ):
                    started = time.perf_counter()
                    response = client.get(path)
                    elapsed = (time.perf_counter() - started) * 1000
                    assert response.status_code == 200, response.text
                    if index >= 10:  # warm-up
                        timings[name].append(elapsed)
        return {
            "jobs_list_p50_ms": round(percentile(timings["list"], 50), 1),
            "jobs_list_p95_ms": round(percentile(timings["list"], 95), 1),
            "job_status_p50_ms": round(percentile(timings["status"], 50), 1),
            "job_status_p95_ms": round(percentile(timings["status"], 95), 1),
        }
    finally:
        hub.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    result: dict[str, Any] = {"cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        result |= artifact_upload(root / "upload", args.size_mb)
        result["junit_10k_sqlite_s"] = round(
            asyncio.run(junit_store(f"sqlite:///{root / 'junit.db'}")), 3
        )
        sqlite_dir = root / "many"
        (sqlite_dir / "data").mkdir(parents=True)
        sqlite_url = f"sqlite:///{sqlite_dir / 'data' / 'testfleet.db'}"
        asyncio.run(fill_store(sqlite_url, args.jobs))
        result |= {
            f"sqlite_{k}": v for k, v in api_latency(sqlite_dir, sqlite_url, args.jobs).items()
        }
        if not args.no_postgres:
            with fresh_postgres() as url:
                result["junit_10k_postgres_s"] = round(asyncio.run(junit_store(url)), 3)
            with fresh_postgres() as url:
                asyncio.run(fill_store(url, args.jobs))
                latency = api_latency(root / "pg", url, args.jobs)
                result |= {f"postgres_{k}": v for k, v in latency.items()}
    result["jobs_in_store"] = args.jobs
    print(json.dumps(result))


if __name__ == "__main__":
    main()
