"""The probe's overhead on a CPU-bound application, side by side with plain `coverage run` of
the same program in one run; prints one JSON line.

The example shop (examples/apps/shop) prices random orders (`python -m shop.main --orders N
--time`, which prints how long its work took). Rounds alternate three ways to run it:

- plain:     python -m shop.main
- coverage:  python -m coverage run --source shop -m shop.main
- probe:     testfleet probe --app shop --build bench --source shop -- python -m shop.main,
             connected to a hub, inside a global session that is open the whole time (a
             parked probe of the same build holds it open; each new process joins it on
             connecting), so every flush of its coverage (every 2 s) is part of the figure.

Reported: the work's median seconds each way, and the probe's overhead over `coverage run`
(the target: at most 10 %), for the work and for the whole process (start-up included).

Usage: python -m benchmarks.coverage_overhead [--orders 60000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from tests.support.processes import Hub, cli_command, wait_until

ROOT = Path(__file__).resolve().parents[1]
SHOP = ROOT / "examples" / "apps" / "shop"


def run(command: list[str], env: dict[str, str]) -> tuple[float, float, float]:
    """(the work's seconds and CPU seconds as the program reports them, the whole process's
    seconds)."""
    began = time.perf_counter()
    result = subprocess.run(
        command, cwd=SHOP, env=env, capture_output=True, text=True, timeout=600, check=True
    )
    elapsed = time.perf_counter() - began
    said = dict(line.split() for line in result.stdout.splitlines() if line.startswith("work_"))
    return float(said["work_seconds"]), float(said["work_cpu_seconds"]), elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=60_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COVERAGE_", "TESTFLEET_"))}
    program = ["-m", "shop.main", "--orders", str(args.orders), "--time"]
    with tempfile.TemporaryDirectory() as folder:
        workdir = Path(folder)
        env["COVERAGE_FILE"] = str(workdir / ".coverage")
        hub = Hub(workdir).start()
        probe = [
            *cli_command(),
            "probe",
            "--hub",
            hub.url,
            "--app",
            "shop",
            "--build",
            "bench",
            "--source",
            "shop",
            "--",
        ]
        go = workdir / "never"
        parked = subprocess.Popen(
            [*probe, sys.executable, "run.py", "--go-file", str(go)],
            cwd=SHOP,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            with httpx.Client(base_url=hub.url, timeout=30) as api:
                wait_until(
                    lambda: api.get("/api/v1/coverage/agents").json()["agents"], 30, 0.05, "probe"
                )
                started = api.post(
                    "/api/v1/coverage/apps/shop/dispatch-action",
                    json={"type": "START", "payload": {"sessionId": "bench", "isGlobal": True}},
                )
                assert started.status_code == 200, started.text
                ways = {
                    "plain": [sys.executable, *program],
                    "coverage": [
                        sys.executable,
                        "-m",
                        "coverage",
                        "run",
                        "--source",
                        "shop",
                        *program,
                    ],
                    "probe": [*probe, "python", *program],
                }
                work: dict[str, list[float]] = {name: [] for name in ways}
                cpu: dict[str, list[float]] = {name: [] for name in ways}
                whole: dict[str, list[float]] = {name: [] for name in ways}
                for _ in range(args.rounds):
                    for name, command in ways.items():
                        seconds, cpu_seconds, elapsed = run(command, env)
                        work[name].append(seconds)
                        cpu[name].append(cpu_seconds)
                        whole[name].append(elapsed)
                stopped = api.post(
                    "/api/v1/coverage/apps/shop/dispatch-action",
                    json={"type": "STOP", "payload": {"sessionId": "bench"}},
                ).json()["sessions"][0]
        finally:
            parked.kill()
            parked.wait(10)
            hub.stop()
    median = {name: statistics.median(values) for name, values in work.items()}
    median_cpu = {name: statistics.median(values) for name, values in cpu.items()}
    median_whole = {name: statistics.median(values) for name, values in whole.items()}
    print(
        json.dumps(
            {
                "orders": args.orders,
                "rounds": args.rounds,
                "work_s": {k: round(v, 3) for k, v in median.items()},
                "work_cpu_s": {k: round(v, 3) for k, v in median_cpu.items()},
                "process_s": {k: round(v, 3) for k, v in median_whole.items()},
                "probe_over_coverage_run_pct": round(
                    100 * (median["probe"] / median["coverage"] - 1), 1
                ),
                "probe_over_coverage_run_cpu_pct": round(
                    100 * (median_cpu["probe"] / median_cpu["coverage"] - 1), 1
                ),
                "probe_over_coverage_run_process_pct": round(
                    100 * (median_whole["probe"] / median_whole["coverage"] - 1), 1
                ),
                "session_probes_covered": stopped["totals"]["covered"],
                "work_s_all": {k: [round(x, 3) for x in v] for k, v in work.items()},
                "work_cpu_s_all": {k: [round(x, 3) for x in v] for k, v in cpu.items()},
                "cpus": os.cpu_count(),
            }
        )
    )


if __name__ == "__main__":
    main()
