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


def test_a_second_up_on_one_data_directory_is_refused_naming_the_first(tmp_path: Path) -> None:
    data_dir = tmp_path / "lab"
    port = free_port()
    first = _up(data_dir, port)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            _wait_ready(client, first)
        second = subprocess.run(
            [*cli_command(), "up", "--data-dir", str(data_dir), "--port", str(free_port())],
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=30)
    assert second.returncode == 1
    assert f"in use by http://127.0.0.1:{port}" in second.stderr
    assert "Traceback" not in second.stderr
    assert oct(data_dir.stat().st_mode & 0o777) == "0o700"
    assert oct((data_dir / "testfleet.db").stat().st_mode & 0o777) == "0o600"


@pytest.mark.parametrize(
    ("db", "code", "says"),
    [
        ("postgresql://nobody@127.0.0.1:1/nothing", 1, "cannot open the store at"),
        ("mysql://x", 2, "unsupported database 'mysql'"),
    ],
)
def test_hub_with_a_bad_store_says_so_in_one_line(db: str, code: int, says: str) -> None:
    result = subprocess.run(
        [*cli_command(), "hub", "--db", db, "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == code
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert says in lines[0]
    assert "hub on" not in result.stderr
