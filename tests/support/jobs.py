"""Helpers to run jobs through the HTTP API in tests."""

from __future__ import annotations

import time
from typing import Any

import httpx

FINISHED = {"completed", "failed", "cancelled"}


def echo_job(name: str = "echo", text: str = "hi", **extra: Any) -> dict[str, Any]:
    """A job of one test with one echo step."""
    return {
        "name": name,
        "tests": [
            {"name": "t", "steps": [{"name": "say", "plugin": "echo", "params": {"text": text}}]}
        ],
        **extra,
    }


def cmd_job(
    name: str,
    code: str,
    *,
    timeout: str | None = None,
    retry: int = 0,
    count: int = 1,
    **extra: Any,
) -> dict[str, Any]:
    """A job of one test whose step runs `python3 -c code`."""
    step: dict[str, Any] = {
        "name": "run",
        "plugin": "cmd",
        "params": {"executable": "python3", "args": ["-u", "-c", code]},
    }
    if timeout:
        step["timeout"] = timeout
    return {
        "name": name,
        "tests": [
            {
                "name": "t",
                "devices": {"count": count},
                "retry": {"count": retry, "interval": 0},
                "steps": [step],
            }
        ],
        **extra,
    }


def start(client: httpx.Client, descriptor: dict[str, Any]) -> int:
    """Submit a job; returns its id."""
    response = client.post("/api/v1/jobs", json=descriptor)
    assert response.status_code == 201, response.text
    return int(response.json()["job_id"])


def wait_state(
    client: httpx.Client, job_id: int, states: set[str] | None = None, timeout: float = 30.0
) -> dict[str, Any]:
    """Poll the job's status until its state is in `states` (default: finished)."""
    wanted = states or FINISHED
    deadline = time.monotonic() + timeout
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        response = client.get(f"/api/v1/jobs/{job_id}")
        if response.status_code == 200:
            status = response.json()
            if status["state"] in wanted:
                return status
        time.sleep(0.05)
    raise AssertionError(
        f"job {job_id} not {sorted(wanted)} within {timeout} s: {status.get('state')} {status}"
    )


def tasks_of(status: dict[str, Any]) -> list[dict[str, Any]]:
    """Every task in a status, in order."""
    return [task for run in status["runs"] for test in run["tests"] for task in test["tasks"]]


def wait_task_running(client: httpx.Client, job_id: int, timeout: float = 20.0) -> dict[str, Any]:
    """Wait until some task of the job is running and its first step has started."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = client.get(f"/api/v1/jobs/{job_id}").json()
        for task in tasks_of(status):
            if task["state"] == "running" and task["steps"][0]["state"] == "running":
                return task
        time.sleep(0.05)
    raise AssertionError(f"no task of job {job_id} running within {timeout} s")
