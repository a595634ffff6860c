"""Does a burst of refused requests cost anyone else's throughput? (issue 6)

1,000 echo jobs submitted at once, alone and again while 1,000 stop requests for jobs that
have already finished (each refused with 409) are sent in the same seconds; rounds alternate.
Prints one JSON line with the jobs/s of each round and the ratio of the medians.

Usage: python -m benchmarks.refusals [--backend sqlite|postgresql] [--jobs 1000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import aiohttp

from benchmarks.harness import fresh_postgres, lab
from benchmarks.jobs import ECHO, throughput


async def stop_finished(url: str, job_ids: list[int], concurrency: int) -> dict[str, int]:
    """Ask to stop every job in `job_ids` (all finished); count the answers by status."""
    statuses: dict[str, int] = {}
    semaphore = asyncio.Semaphore(concurrency)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(base_url=url, connector=connector) as session:

        async def stop(job_id: int) -> None:
            async with semaphore, session.post(f"/api/v1/jobs/{job_id}/stop") as response:
                await response.read()
                statuses[str(response.status)] = statuses.get(str(response.status), 0) + 1

        await asyncio.gather(*(stop(job_id) for job_id in job_ids))
    return statuses


async def finished_jobs(url: str, count: int) -> list[int]:
    """Ids of `count` finished jobs (run now, before the measured rounds)."""
    async with aiohttp.ClientSession(base_url=url) as session:
        ids = []
        for _ in range(count):
            async with session.post("/api/v1/jobs", json=ECHO) as response:
                ids.append(int((await response.json())["job_id"]))
        for _ in range(600):
            async with session.get("/api/v1/jobs", params={"state": "queued"}) as r:
                queued = (await r.json())["jobs"]
            async with session.get("/api/v1/jobs", params={"state": "running"}) as r:
                running = (await r.json())["jobs"]
            if not queued and not running:
                return ids
            await asyncio.sleep(0.2)
    raise SystemExit("the warm-up jobs did not finish")


async def rounds(url: str, pid: int, jobs: int, count: int, concurrency: int) -> dict[str, Any]:
    targets = await finished_jobs(url, jobs)
    alone: list[float] = []
    beside: list[float] = []
    refused: dict[str, int] = {}
    for _ in range(count):
        result = await throughput(url, pid, jobs, concurrency, limit_s=600)
        alone.append(result["jobs_per_s"])
        result, statuses = await asyncio.gather(
            throughput(url, pid, jobs, concurrency, limit_s=600),
            stop_finished(url, targets, concurrency),
        )
        beside.append(result["jobs_per_s"])
        for code, number in statuses.items():
            refused[code] = refused.get(code, 0) + number
    return {
        "alone_jobs_per_s": alone,
        "with_refusals_jobs_per_s": beside,
        "stop_answers": refused,
        "ratio_of_medians": round(statistics.median(beside) / statistics.median(alone), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    result: dict[str, Any] = {"backend": args.backend, "jobs": args.jobs}
    with tempfile.TemporaryDirectory(prefix="tf-bench-") as tmp:

        def measure(db_url: str | None) -> None:
            with lab(Path(tmp), agents=4, slots=8, db_url=db_url) as (hub, _):
                assert hub.process is not None
                result.update(
                    asyncio.run(
                        rounds(hub.url, hub.process.pid, args.jobs, args.rounds, args.concurrency)
                    )
                )

        if args.backend == "postgresql":
            with fresh_postgres() as url:
                measure(url)
        else:
            measure(None)
    json.dump(result, sys.stdout)
    print()


if __name__ == "__main__":
    main()
