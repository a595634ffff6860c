"""Developer mode's delays: a pause asked for while a step runs, and a resume.

    python -m benchmarks.devmode [--rounds 20] [--step-seconds 0.3]

A real hub and agent; one job of `rounds + 1` steps that each sleep `step-seconds` (the first
3 s, while the developer's socket opens). In every
round, while step k runs, the developer's socket asks to pause at the next boundary; once the
task is paused it turns that off and resumes. Measured per round, from the stored events (the
agent and the hub stamp them on the same machine's clock):

- `step_end_to_paused_ms`: step k's STEP_FINISHED to the task's TASK_PAUSED (agent);
- `resume_to_step_start_ms`: the hub taking `resume_test_execution` (its `developer_resumed`
  event) to step k+1's STEP_STARTED on the agent (hub -> agent delivery included);
- `client_resume_to_step_started_ms`: the developer's socket sending the resume to it
  receiving `step_started` (the whole way round: hub, agent, store, and back).

Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from tests.integration.test_devmode import open_dev, running
from tests.support.jobs import start, wait_state

from benchmarks.harness import lab, percentile


def job(rounds: int, seconds: float) -> dict[str, Any]:
    """One test of `rounds + 1` steps, each sleeping `seconds`."""

    def sleep(pause: float) -> dict[str, Any]:
        return {"executable": "python3", "args": ["-c", f"import time; time.sleep({pause})"]}

    steps = [
        {"name": f"s{i}", "plugin": "cmd", "params": sleep(seconds if i else 3.0)}
        for i in range(rounds + 1)
    ]
    return {"name": "devmode-bench", "tests": [{"name": "t", "steps": steps}]}


def at(event: dict[str, Any]) -> float:
    """An event's time in seconds."""
    return datetime.fromisoformat(event["at"]).timestamp()


def stats(values: list[float]) -> dict[str, float]:
    """p50, p90 and max, in ms rounded to 0.01."""
    return {
        "p50": round(percentile(values, 50), 2),
        "p90": round(percentile(values, 90), 2),
        "max": round(max(values), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--step-seconds", type=float, default=0.3)
    args = parser.parse_args()
    client_round_trip: list[float] = []
    with (
        tempfile.TemporaryDirectory() as workdir,
        lab(Path(workdir), agents=1, slots=1) as (hub, _),
        httpx.Client(base_url=hub.url, timeout=30) as client,
    ):
        job_id = start(client, job(args.rounds, args.step_seconds))
        running(client, job_id)
        dev = open_dev(hub.url, job_id, "bench")
        try:
            dev.wait("session_started")  # step 0 runs (3 s)
            for k in range(args.rounds):
                dev.send("set_pause_on_next_command", flag=True)  # while step k runs
                dev.wait("paused", step_index=k + 1, timeout=60)
                dev.send("set_pause_on_next_command", flag=False)
                dev.wait("status", pause_on_next_command=False)
                sent = time.perf_counter()
                dev.send("resume_test_execution")
                dev.wait("step_started", step_index=k + 1, timeout=60)
                client_round_trip.append((time.perf_counter() - sent) * 1000)
                dev.seen.clear()
            final = wait_state(client, job_id, timeout=120)
        finally:
            dev.socket.close()
        events = client.get(f"/api/v1/jobs/{job_id}/events", params={"limit": 10000}).json()
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for event in events["events"]:
        by_kind.setdefault(event["kind"], []).append(event)
    finished = {e["data"]["step_index"]: e for e in by_kind.get("step_finished", [])}
    started = {e["data"]["step_index"]: e for e in by_kind.get("step_started", [])}
    paused = by_kind.get("task_paused", [])
    resumed = by_kind.get("developer_resumed", [])
    to_paused = [(at(p) - at(finished[p["data"]["step_index"] - 1])) * 1000 for p in paused]
    to_start = [
        (at(started[p["data"]["step_index"]]) - at(r)) * 1000
        for p, r in zip(paused, resumed, strict=True)
    ]
    print(
        json.dumps(
            {
                "rounds": args.rounds,
                "job_state": final["state"],
                "step_end_to_paused_ms": stats(to_paused),
                "resume_to_step_start_ms": stats(to_start),
                "client_resume_to_step_started_ms": stats(client_round_trip),
                "cpus": os.cpu_count(),
            }
        )
    )


if __name__ == "__main__":
    main()
