"""Artifacts with a real hub and real agents: a step's files reach the hub; an upload cut
in the middle resumes and matches its checksum; an agent killed mid-upload leaves nothing
listed; a large file streams with flat memory on both sides."""

from __future__ import annotations

import hashlib
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.jobs import start, tasks_of, wait_state
from tests.support.memory import PeakRss
from tests.support.processes import Agent, Hub, cli_command, wait_until
from tests.support.proxy import CuttableProxy

pytestmark = pytest.mark.integration
BIG = 300 * 1024 * 1024


def write_files_job(name: str, code: str, globs: list[str], pool: str) -> dict[str, Any]:
    """One cmd step running `python3 -c code` in the task's directory, keeping `globs`."""
    return {
        "name": name,
        "tests": [
            {
                "name": "t",
                "devices": {"labels": {"pool": pool}},
                "steps": [
                    {
                        "name": "make",
                        "plugin": "cmd",
                        "params": {"executable": "python3", "args": ["-c", code]},
                        "artifacts": globs,
                    }
                ],
            }
        ],
    }


BIG_FILE = (
    "import os\n"
    "block = bytes(range(256)) * 4096\n"
    f"with open('big.bin', 'wb') as f:\n"
    f"    for i in range({BIG} // len(block)):\n"
    "        f.write(block)\n"
)


def big_sha() -> str:
    block = bytes(range(256)) * 4096
    hasher = hashlib.sha256()
    for _ in range(BIG // len(block)):
        hasher.update(block)
    return hasher.hexdigest()


def cli(hub_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `testfleet --hub URL ARGS`; it must succeed."""
    result = subprocess.run(
        [*cli_command(), "--hub", hub_url, *args], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result


@dataclass
class Lab:
    hub: Hub
    proxy: CuttableProxy
    agent: Agent
    workdir: Path

    def parts(self) -> list[Path]:
        """Unfinished uploads on the hub's disk."""
        return list((self.workdir / "data" / "artifacts" / "uploads").glob("*/*"))


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    workdir = tmp_path_factory.mktemp("artifacts")
    hub = Hub(workdir, extra=["--agent-timeout", "3"]).start()
    with CuttableProxy(hub.port) as proxy:
        agent = Agent(workdir, f"http://127.0.0.1:{proxy.port}", "via-proxy", slots=1)
        agent.labels = {"pool": "proxy"}
        agent.start()
        with httpx.Client(base_url=hub.url, timeout=30) as client:
            agent.wait_online(client)
        yield Lab(hub, proxy, agent, workdir)
        agent.stop()
    hub.stop()


def test_a_step_s_files_are_kept_and_served(lab: Lab) -> None:
    code = (
        "import os\n"
        "os.makedirs('reports', exist_ok=True)\n"
        "os.makedirs('shots/deep', exist_ok=True)\n"
        "open('reports/r.xml', 'w').write('<x/>')\n"
        "open('reports/junit.xml', 'w').write('<testsuite name=\"s\"><testcase classname=\"m\" "
        'name="t_ok"/><testcase classname="m" name="t_bad"><failure message="nope"/>'
        "</testcase></testsuite>')\n"
        "open('shots/deep/a.png', 'wb').write(b'PNG')\n"
        "open('other.txt', 'w').write('not kept')\n"
    )
    with httpx.Client(base_url=lab.hub.url, timeout=30) as client:
        job_id = start(
            client, write_files_job("files", code, ["reports/*.xml", "shots/**"], "proxy")
        )
        status = wait_state(client, job_id)
        assert status["state"] == "completed", status
        listing = client.get(f"/api/v1/jobs/{job_id}/artifacts").json()
        paths = {a["path"]: a for a in listing["artifacts"]}
        assert sorted(paths) == ["reports/junit.xml", "reports/r.xml", "shots/deep/a.png"]
        assert client.get(paths["shots/deep/a.png"]["download"]).content == b"PNG"
        logs = client.get(f"/api/v1/jobs/{job_id}/logs").text
        assert "artifacts: uploaded reports/r.xml" in logs
    task_id = paths["shots/deep/a.png"]["task_id"]
    target = lab.workdir / "downloaded"
    listed = cli(lab.hub.url, "job", "artifacts", str(job_id))
    assert "reports/r.xml" in listed.stdout and "shots/deep/a.png" in listed.stdout
    cli(lab.hub.url, "job", "artifacts", str(job_id), "--download", str(target))
    shown = cli(lab.hub.url, "job", "status", str(job_id)).stdout
    assert "test cases: 2 (1 passed, 1 failed)" in shown and "m::t_bad" in shown
    failed = cli(lab.hub.url, "job", "tests", str(job_id), "--failed").stdout
    assert "m::t_bad" in failed and "t_ok" not in failed and "nope" in failed
    history = cli(lab.hub.url, "testcase", "m::t_bad").stdout
    assert "on files: 0 passed, 1 failed" in history
    assert (target / f"{task_id}-slot-0" / "shots/deep/a.png").read_bytes() == b"PNG"
    assert (target / f"{task_id}-slot-0" / "reports/r.xml").read_text() == "<x/>"


def test_an_upload_cut_in_the_middle_resumes_and_matches_its_checksum(lab: Lab) -> None:
    with httpx.Client(base_url=lab.hub.url, timeout=30) as client:
        job_id = start(client, write_files_job("cut", BIG_FILE, ["big.bin"], "proxy"))
        cuts = 0
        deadline = time.monotonic() + 60
        while cuts < 2 and time.monotonic() < deadline:
            parts = lab.parts()
            if parts and parts[0].stat().st_size > (cuts + 1) * BIG // 4:
                lab.proxy.cut()
                cuts += 1
            time.sleep(0.005)
        assert cuts == 2, "the upload was never seen under way"
        status = wait_state(client, job_id, timeout=90)
        assert status["state"] == "completed", status
        [artifact] = client.get(f"/api/v1/jobs/{job_id}/artifacts").json()["artifacts"]
        assert artifact["size"] == BIG and artifact["sha256"] == big_sha()
        hasher = hashlib.sha256()
        with client.stream("GET", artifact["download"]) as response:
            for block in response.iter_bytes():
                hasher.update(block)
        assert hasher.hexdigest() == big_sha()


def test_a_large_artifact_streams_with_flat_memory_and_a_killed_agent_leaves_nothing(
    lab: Lab,
) -> None:
    agent = Agent(lab.workdir, lab.hub.url, "killed", slots=1)
    agent.labels = {"pool": "kill"}
    agent.start()
    with httpx.Client(base_url=lab.hub.url, timeout=30) as client:
        agent.wait_online(client)
        assert lab.hub.process is not None and agent.process is not None
        hub_rss, agent_rss = PeakRss(lab.hub.process.pid), PeakRss(agent.process.pid)
        flat = start(client, write_files_job("flat", BIG_FILE, ["big.bin"], "kill"))
        status = wait_state(client, flat, timeout=90)
        assert status["state"] == "completed", status
        grew = {"hub": hub_rss.stop(), "agent": agent_rss.stop()}
        assert all(size < 64 * 1024 * 1024 for size in grew.values()), grew

        job_id = start(client, write_files_job("killed", BIG_FILE, ["big.bin"], "kill"))
        wait_until(
            lambda: any(p.stat().st_size > BIG // 4 for p in lab.parts()),
            60,
            0.005,
            "the upload under way",
        )
        agent.kill()
        status = wait_state(client, job_id, timeout=30)
        assert tasks_of(status)[0]["state"] == "incomplete", status
        assert client.get(f"/api/v1/jobs/{job_id}/artifacts").json()["artifacts"] == []


def test_schedules_and_webhooks_from_the_command_line(lab: Lab) -> None:
    descriptor = lab.workdir / "nightly.yaml"
    descriptor.write_text(
        "name: nightly\nparams: {version: '1'}\ntests:\n  - name: t\n"
        "    devices: {labels: {pool: proxy}}\n    steps:\n"
        "      - {name: say, plugin: echo, params: {text: 'v${{ params.version }}'}}\n"
    )
    added = cli(
        lab.hub.url,
        "schedule",
        "add",
        str(descriptor),
        "--cron",
        "0 2 * * *",
        "--tz",
        "Europe/Berlin",
        "-p",
        "version=7",
    )
    assert added.stdout.startswith("schedule ") and added.stdout.count("next:") == 5
    listed = cli(lab.hub.url, "schedule", "list")
    assert "nightly" in listed.stdout and "Europe/Berlin" in listed.stdout
    schedule_id = added.stdout.split()[1]
    job_id = cli(lab.hub.url, "schedule", "run", schedule_id).stdout.strip()
    with httpx.Client(base_url=lab.hub.url, timeout=30) as client:
        assert wait_state(client, int(job_id))["state"] == "completed"
    logs = cli(lab.hub.url, "job", "logs", job_id).stdout
    assert logs == "slot-0 | v7\n"
    hook = cli(lab.hub.url, "webhook", "add", "http://127.0.0.1:9/x", "-e", "job.failed", "--json")
    assert '"secret"' in hook.stdout
    assert "job.failed" in cli(lab.hub.url, "webhook", "list").stdout
    bad = subprocess.run(
        [*cli_command(), "--hub", lab.hub.url, "webhook", "add", "ftp://x", "-e", "nope"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "--url" in bad.stderr and "Traceback" not in bad.stderr
