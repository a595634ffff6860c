"""`testfleet up`: a hub and a local agent in one command, stopped cleanly, resumed."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.support.jobs import echo_job, start, wait_state
from tests.support.processes import cli_command, free_port, wait_until

pytestmark = pytest.mark.integration


def _up(data_dir: Path, port: int, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*cli_command(), "up", "--data-dir", str(data_dir), "--port", str(port), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
    )


def _wait_ready(client: httpx.Client, process: subprocess.Popen[str]) -> None:
    def ready() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"up exited: {process.communicate()}")
        try:
            devices = client.get("/api/v1/devices").json()["devices"]
        except httpx.HTTPError:
            return False
        return sum(d["state"] == "free" for d in devices) >= 2

    wait_until(ready, 30, 0.1, "testfleet up to be ready with its local agent")


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_up_runs_jobs_stops_cleanly_and_resumes(
    tmp_path: Path, stop_signal: signal.Signals
) -> None:
    port = free_port()
    process = _up(tmp_path, port)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        try:
            _wait_ready(client, process)
            first = start(client, echo_job("before-restart"))
            assert wait_state(client, first)["state"] == "completed"
        finally:
            process.send_signal(stop_signal)
            _out, err = process.communicate(timeout=20)
        assert process.returncode == 0, err
        assert err.splitlines()[0] == f"testfleet is up: open http://127.0.0.1:{port}/ui/"
        again = _up(tmp_path, port)
        try:
            _wait_ready(client, again)
            assert client.get(f"/api/v1/jobs/{first}").json()["state"] == "completed"
            second = start(client, echo_job("after-restart"))
            assert wait_state(client, second)["state"] == "completed"
            agents = client.get("/api/v1/agents").json()["agents"]
            assert len(agents) == 1 and agents[0]["state"] == "online"
        finally:
            again.send_signal(signal.SIGTERM)
            again.communicate(timeout=20)
        assert again.returncode == 0


def test_up_with_auth_prints_a_first_admin_token(tmp_path: Path) -> None:
    port = free_port()
    process = _up(tmp_path, port, "--auth")
    try:
        assert process.stdout is not None
        token = process.stdout.readline().strip()
        assert token.startswith("tf_")
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}",
            timeout=30,
            headers={"Authorization": f"Bearer {token}"},
        ) as client:
            _wait_ready(client, process)
            assert wait_state(client, start(client, echo_job()))["state"] == "completed"
            assert httpx.get(f"http://127.0.0.1:{port}/api/v1/jobs").status_code == 401
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=20)
    assert process.returncode == 0
