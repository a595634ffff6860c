"""The real `testfleet` command against a real hub with one real agent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import LiveHub
from tests.support.processes import free_port

pytestmark = pytest.mark.integration

TESTFLEET = str(Path(sys.executable).with_name("testfleet"))
TIMEOUT = 90


def run_cli(
    hub: str, *args: str, stdin: str | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run the CLI with TESTFLEET_HUB=hub; no terminal, so plain output."""
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith("TESTFLEET_")
    }
    environment.update({"TESTFLEET_HUB": hub, "NO_COLOR": "1", **env})
    return subprocess.run(
        [TESTFLEET, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=environment,
        check=False,
    )


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def job(name: str, tags: list[str] | None = None, code: int = 0) -> dict[str, Any]:
    script = f"import sys; print('from-cmd'); sys.exit({code})"
    return {
        "name": name,
        "tags": tags or [],
        "tests": [
            {
                "name": "hello",
                "steps": [
                    {"name": "say", "plugin": "echo", "params": {"text": "hi"}},
                    {
                        "name": "run",
                        "plugin": "cmd",
                        "timeout": "30s",
                        "params": {"executable": sys.executable, "args": ["-c", script]},
                    },
                ],
            }
        ],
    }


def write(tmp_path: Path, descriptor: dict[str, Any], as_yaml: bool = True) -> str:
    path = tmp_path / f"{uuid.uuid4().hex[:8]}.{'yaml' if as_yaml else 'json'}"
    path.write_text(yaml.safe_dump(descriptor) if as_yaml else json.dumps(descriptor))
    return str(path)


def finished_status(hub: str, job_id: str) -> dict[str, Any]:
    """Wait for the end by following the events, then return the status JSON."""
    follow = run_cli(hub, "job", "events", job_id, "--follow")
    assert follow.returncode == 0, follow.stderr
    result = run_cli(hub, "job", "status", job_id, "--json")
    assert result.returncode == 0, result.stderr
    status: dict[str, Any] = json.loads(result.stdout)
    return status


def test_start_prints_only_the_id_and_the_job_completes(live_hub: LiveHub, tmp_path: Path) -> None:
    started = run_cli(live_hub.url, "job", "start", write(tmp_path, job("cli-smoke")))
    assert started.returncode == 0, started.stderr
    job_id = started.stdout.strip()
    assert started.stdout == f"{job_id}\n" and job_id.isdigit()
    status = finished_status(live_hub.url, job_id)
    assert status["state"] == "completed"
    shown = run_cli(live_hub.url, "job", "status", job_id)
    assert shown.returncode == 0
    assert f"job {job_id} cli-smoke completed" in shown.stdout
    assert live_hub.agent_name in shown.stdout
    logs = run_cli(live_hub.url, "job", "logs", job_id)
    device = status["runs"][0]["tests"][0]["tasks"][0]["device_name"]
    assert logs.stdout == f"{device} | hi\n{device} | from-cmd\n"
    raw = run_cli(live_hub.url, "job", "logs", job_id, "--raw")
    assert raw.stdout == "hi\nfrom-cmd\n"
    task_id = str(status["runs"][0]["tests"][0]["tasks"][0]["task_id"])
    step = run_cli(live_hub.url, "job", "logs", job_id, "--task", task_id, "--step", "1", "--raw")
    assert step.stdout == "from-cmd\n"


def test_start_follow_streams_and_exits_by_outcome(live_hub: LiveHub, tmp_path: Path) -> None:
    passed = run_cli(live_hub.url, "job", "start", "--follow", write(tmp_path, job("ok")))
    assert passed.returncode == 0, passed.stdout + passed.stderr
    lines = passed.stdout.splitlines()
    assert lines[0].startswith("job ") and lines[0].endswith(" started")
    assert any(line.endswith("[stdout] hi") for line in lines)
    assert any(line.endswith("[stdout] from-cmd") for line in lines)
    assert any(" job_finished " in line for line in lines)
    assert " ok completed after " in passed.stdout

    failed = run_cli(live_hub.url, "job", "start", "-f", "-", stdin=json.dumps(job("bad", code=3)))
    assert failed.returncode == 1
    assert " bad failed after " in failed.stdout
    assert "step run: " in failed.stdout


def test_list_filters_pages_and_json(live_hub: LiveHub, tmp_path: Path) -> None:
    tag = unique("t")
    file = write(tmp_path, job(unique("listed"), tags=[tag]), as_yaml=False)
    ids = [run_cli(live_hub.url, "job", "start", file).stdout.strip() for _ in range(3)]
    for job_id in ids:
        finished_status(live_hub.url, job_id)
    newest_first = sorted(ids, key=int, reverse=True)

    listed = run_cli(live_hub.url, "job", "list", "--tag", tag, "--json")
    assert [str(j["job_id"]) for j in json.loads(listed.stdout)["jobs"]] == newest_first
    page = run_cli(live_hub.url, "job", "list", "--tag", tag, "--limit", "2")
    assert page.returncode == 0
    assert "--cursor" in page.stderr
    cursor = json.loads(
        run_cli(live_hub.url, "job", "list", "--tag", tag, "--limit", "2", "--json").stdout
    )["next_cursor"]
    rest = run_cli(
        live_hub.url, "job", "list", "--tag", tag, "--limit", "2", "--cursor", cursor, "--json"
    )
    assert [str(j["job_id"]) for j in json.loads(rest.stdout)["jobs"]] == newest_first[2:]
    every = run_cli(live_hub.url, "job", "list", "--tag", tag, "--limit", "1", "--all", "--json")
    assert [str(j["job_id"]) for j in json.loads(every.stdout)["jobs"]] == newest_first
    table = run_cli(live_hub.url, "job", "list", "--tag", tag, "--state", "completed")
    assert all(job_id in table.stdout for job_id in ids)
    none = run_cli(live_hub.url, "job", "list", "--tag", tag, "-s", "failed", "--since", "1h")
    assert none.returncode == 0 and "no jobs match" in none.stderr
    future = run_cli(
        live_hub.url, "job", "list", "--tag", tag, "--since", "2999-01-01T00:00:00Z", "--json"
    )
    assert json.loads(future.stdout)["jobs"] == []


def test_events(live_hub: LiveHub, tmp_path: Path) -> None:
    job_id = run_cli(live_hub.url, "job", "start", write(tmp_path, job("ev"))).stdout.strip()
    followed = run_cli(live_hub.url, "job", "events", job_id, "--follow", "--json")
    assert followed.returncode == 0
    records = [json.loads(line) for line in followed.stdout.splitlines()]
    assert records[-1]["kind"] == "job_finished"
    listed = json.loads(run_cli(live_hub.url, "job", "events", job_id, "--json").stdout)
    assert [e["id"] for e in listed["events"]] == [r["id"] for r in records]
    plain = run_cli(live_hub.url, "job", "events", job_id, "--after", str(records[-2]["id"]))
    assert plain.stdout.count("\n") == 1 and "job_finished" in plain.stdout


def test_stop_and_retry(live_hub: LiveHub, tmp_path: Path) -> None:
    sleeper = {
        "name": unique("sleeper"),
        "tests": [
            {
                "name": "nap",
                "steps": [{"name": "nap", "plugin": "sleep", "params": {"duration": 60}}],
            }
        ],
    }
    job_id = run_cli(live_hub.url, "job", "start", write(tmp_path, sleeper)).stdout.strip()
    stopped = run_cli(live_hub.url, "job", "stop", job_id)
    assert stopped.returncode == 0, stopped.stderr
    assert stopped.stdout.startswith(f"job {job_id}: stop requested")
    assert finished_status(live_hub.url, job_id)["state"] == "cancelled"
    again = run_cli(live_hub.url, "job", "stop", job_id)
    assert again.returncode == 1 and "HTTP 409" in again.stderr

    first = run_cli(live_hub.url, "job", "start", write(tmp_path, job("again"))).stdout.strip()
    finished_status(live_hub.url, first)
    retried = run_cli(live_hub.url, "job", "retry", first)
    assert retried.returncode == 0, retried.stderr
    new_id = retried.stdout.strip()
    assert new_id.isdigit() and new_id != first
    assert finished_status(live_hub.url, new_id)["retried_from"] == int(first)


def test_inventory_and_version(live_hub: LiveHub) -> None:
    agents = json.loads(run_cli(live_hub.url, "agents", "--json").stdout)
    assert live_hub.agent_name in [agent["name"] for agent in agents["agents"]]
    assert live_hub.agent_name in run_cli(live_hub.url, "agents").stdout
    devices = json.loads(run_cli(live_hub.url, "devices", "--json").stdout)["devices"]
    assert len([d for d in devices if d["agent"] == live_hub.agent_name]) == 2
    version = json.loads(run_cli(live_hub.url, "version", "--json").stdout)
    assert version["client"]["api_version"] == version["hub"]["version"] == 1
    other = run_cli("http://127.0.0.1:1", "--hub", live_hub.url, "version")
    assert other.returncode == 0 and f"at {live_hub.url}" in other.stdout


def test_unknown_job(live_hub: LiveHub) -> None:
    for command in (["status"], ["stop"], ["retry"], ["logs"], ["events"], ["events", "-f"]):
        result = run_cli(live_hub.url, "job", *command, "999999")
        assert result.returncode == 1, command
        assert "job 999999 does not exist (HTTP 404" in result.stderr, command
        assert "Traceback" not in result.stderr


def test_a_bad_descriptor_names_the_field(live_hub: LiveHub, tmp_path: Path) -> None:
    bad = job("bad")
    bad["tests"][0]["steps"][1]["params"] = {"args": ["x"]}
    bad["tests"][0]["steps"].append({"name": "x", "plugin": "nope"})
    result = run_cli(live_hub.url, "job", "start", write(tmp_path, bad))
    assert result.returncode == 2
    assert "at /tests/0/steps/1/params/executable: " in result.stderr
    assert "at /tests/0/steps/2/plugin: " in result.stderr
    assert result.stdout == ""


def test_a_broken_file_is_refused_before_the_hub(live_hub: LiveHub, tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("name: x\ntests:\n  - name: [\n")
    result = run_cli(live_hub.url, "job", "start", str(path))
    assert result.returncode == 2
    assert f"{path} is not valid YAML" in result.stderr and "line 4" in result.stderr
    missing = run_cli(live_hub.url, "job", "start", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 2 and "no such file" in missing.stderr


def test_an_unreachable_hub(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    for command in (["job", "list"], ["agents"], ["job", "start", write(tmp_path, job("x"))]):
        result = run_cli(url, *command)
        assert result.returncode == 1, command
        assert f"cannot reach the testfleet hub at {url}" in result.stderr
        assert "Traceback" not in result.stderr


def test_auth(auth_hub: LiveHub, tmp_path: Path) -> None:
    refused = run_cli(auth_hub.url, "job", "list")
    assert refused.returncode == 1
    assert "HTTP 401" in refused.stderr and "--token" in refused.stderr
    assert auth_hub.admin_token
    file = write(tmp_path, job("authed"))
    started = run_cli(auth_hub.url, "job", "start", file, TESTFLEET_TOKEN=auth_hub.admin_token)
    assert started.returncode == 0, started.stderr
    flag = run_cli(
        auth_hub.url, "--token", auth_hub.admin_token, "job", "status", started.stdout.strip()
    )
    assert flag.returncode == 0
