"""Every figure of docs/performance.md in one run; prints one JSON line.

Usage: python -m benchmarks.run_all [--jobs 1000] [--peer-jobs N (default: --jobs)] [--no-peer]
The Buildbot peer runs from .venv-peers (see benchmarks/peers/README.md); `make bench`
creates it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PEER_PYTHON = ROOT / ".venv-peers" / "bin" / "python"


def last_json_line(command: list[str], timeout: float) -> dict[str, Any]:
    """Run a benchmark command; its last stdout line is its JSON result."""
    print("running:", " ".join(command[1:]), file=sys.stderr, flush=True)
    result = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False
    )
    if result.returncode != 0:
        raise SystemExit(f"{command} failed:\n{result.stderr[-3000:]}")
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument(
        "--peer-jobs", type=int, help="jobs for the side-by-side runs [default: --jobs]"
    )
    parser.add_argument("--no-peer", action="store_true")
    args = parser.parse_args()
    peer_jobs = args.peer_jobs or args.jobs
    jobs = [sys.executable, "-m", "benchmarks.jobs"]
    results: dict[str, Any] = {
        "sqlite": last_json_line([*jobs, "--jobs", str(args.jobs), "--dead-tries", "10"], 1200),
        "postgresql": last_json_line(
            [*jobs, "--backend", "postgresql", "--jobs", str(args.jobs)], 1200
        ),
    }
    plans = [sys.executable, "-m", "benchmarks.plans"]
    chunked = ["--chunk", "100", "--skip-ping", "--rounds", "5"]
    postgres_hubs = ["--backend", "postgresql", "--hubs", "2"]
    results["plans_sqlite"] = last_json_line(plans, 900)
    results["plans_sqlite_chunked"] = last_json_line([*plans, *chunked], 900)
    results["plans_postgresql"] = last_json_line([*plans, *postgres_hubs], 900)
    results["plans_postgresql_chunked"] = last_json_line([*plans, *postgres_hubs, *chunked], 900)
    results["sync_engines"] = last_json_line([sys.executable, "-m", "benchmarks.sync_engines"], 600)
    coverage = [sys.executable, "-m", "benchmarks.coverage_ingest"]
    results["coverage_ingest_sqlite"] = last_json_line([*coverage, "--parts", "10"], 1200)
    results["coverage_ingest_postgresql"] = last_json_line(
        [*coverage, "--parts", "5", "--backend", "postgresql"], 1200
    )
    results["coverage_ingest_socket"] = last_json_line(
        [*coverage, "--parts", "10", "--socket"], 1200
    )
    results["coverage_overhead"] = last_json_line(
        [sys.executable, "-m", "benchmarks.coverage_overhead", "--rounds", "5"], 1800
    )
    if not args.no_peer:
        # The same workload on the same parallelism as the peer: two workers, one at a time.
        results["sqlite_two_workers"] = last_json_line(
            [
                *jobs,
                "--jobs",
                str(peer_jobs),
                "--agents",
                "2",
                "--slots",
                "1",
                "--single",
                "20",
            ],
            1200,
        )
        results["buildbot"] = last_json_line(
            [
                str(PEER_PYTHON),
                "benchmarks/peers/buildbot_peer.py",
                "--jobs",
                str(peer_jobs),
                "--single",
                "20",
                "--timeout",
                "1700",
            ],
            1800,
        )
        ours, theirs = results["sqlite_two_workers"], results["buildbot"]
        results["ratio_vs_buildbot"] = {
            "throughput_same_workers": round(ours["jobs_per_s"] / theirs["jobs_per_s"], 1),
            "throughput_default_lab": round(
                results["sqlite"]["jobs_per_s"] / theirs["jobs_per_s"], 1
            ),
            "single_p50_latency": round(theirs["single_p50_ms"] / ours["single_p50_ms"], 1),
        }
    gateway = [sys.executable, "-m", "benchmarks.webdriver_gateway"]
    results["webdriver_gateway"] = last_json_line(
        gateway if not args.no_peer else [*gateway, "--no-peers"], 900
    )
    print(json.dumps(results))


if __name__ == "__main__":
    main()
