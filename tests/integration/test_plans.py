"""Test plans end to end: a real hub and real agents run the example plans; outcomes are
counted per group; crashes, lost agents, terminated runs and bad input end as they should."""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from testfleet.steps.plan.archive import zip_directory
from tests.support.plans import EXAMPLE_PLANS, import_example_plans
from tests.support.processes import Agent, Hub, cli_command, wait_until

pytestmark = pytest.mark.integration
LOCAL = "plan-local"


@dataclass
class PlanLab:
    hub: Hub
    agent: Agent
    workdir: Path

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.hub.url, timeout=30)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*cli_command(), "--hub", self.hub.url, "plan", *args],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=self.workdir,
        )


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PlanLab]:
    workdir = tmp_path_factory.mktemp("plans")
    hub = Hub(workdir, extra=["--local-agent", LOCAL, "--agent-timeout", "3"]).start()
    agent = Agent(workdir, hub.url, LOCAL, slots=1, extra=["--cache-dir", str(workdir / "cache")])
    agent.start()
    lab = PlanLab(hub, agent, workdir)
    with lab.client() as client:
        agent.wait_online(client)
        import_example_plans(client, "ping", "quorum")
    yield lab
    agent.stop()
    hub.stop()


def run(client: httpx.Client, composition: dict[str, Any]) -> str:
    response = client.post("/run", json=composition)
    assert response.status_code == 201, response.text
    return str(response.json()["task_id"])


def finished(client: httpx.Client, task_id: str, timeout: float = 60) -> dict[str, Any]:
    found: dict[str, Any] = {}

    def done() -> bool:
        found.update(client.post("/status", json={"task_id": task_id}).json())
        return found["states"][-1]["state"] in ("complete", "canceled")

    wait_until(done, timeout, 0.2, f"task {task_id} to finish")
    return found


def vote(groups: list[dict[str, Any]], case: str = "vote", **global_: Any) -> dict[str, Any]:
    total = sum(g["instances"]["count"] for g in groups)
    return {
        "metadata": {"name": "test", "author": "tests"},
        "global": {"plan": "quorum", "case": case, "total_instances": total, **global_},
        "groups": groups,
    }


def outputs_of(client: httpx.Client, run_id: str) -> dict[str, bytes]:
    response = client.post("/outputs", json={"runner": "local:exec", "run_id": run_id})
    assert response.status_code == 200, response.text
    with tarfile.open(fileobj=io.BytesIO(response.content), mode="r:gz") as archive:
        return {m.name: archive.extractfile(m).read() for m in archive if m.isfile()}  # type: ignore[union-attr]


def test_the_ping_example_runs_through_the_cli(lab: PlanLab) -> None:
    composition = EXAMPLE_PLANS / "ping" / "composition.toml"
    result = lab.cli("run", str(composition), "--within", "90")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "outcome: success" in result.stdout
    assert "left: 2/2 ok" in result.stdout and "right: 2/2 ok" in result.stdout
    run_id = result.stdout.split()[1]
    with lab.client() as client:
        files = outputs_of(client, run_id)
        assert f"{run_id}/right/4/metrics.out" in files
        rtt = [json.loads(line) for line in files[f"{run_id}/right/4/metrics.out"].splitlines()]
        assert len(rtt) == 5 and rtt[0]["name"] == "rtt"
        assert json.loads(files[f"{run_id}/result.json"])["outcome"] == "success"
        jobs = client.get("/api/v1/jobs", params={"tag": f"run:{run_id}"}).json()["jobs"]
        assert [j["state"] for j in jobs] == ["completed"]
        logs = client.post("/logs", json={"task_id": run_id}).text
        assert "starting 4 instance(s) of ping/ping" in logs


def test_a_failing_group_fails_the_run_and_is_counted_per_group(lab: PlanLab) -> None:
    composition = json.loads((EXAMPLE_PLANS / "quorum" / "composition.json").read_text())
    with lab.client() as client:
        task = finished(client, run(client, composition))
        assert task["result"] == {
            "outcome": "failure",
            "outcomes": {"ayes": {"ok": 3, "total": 3}, "noes": {"ok": 0, "total": 2}},
        }
        detail = client.get(f"/api/v1/plan-runs/{task['id']}").json()
        states = {g["id"]: [i["state"] for i in g["instances"]] for g in detail["groups"]}
        assert states == {"ayes": ["success"] * 3, "noes": ["failure"] * 2}
        noes = detail["groups"][1]["instances"]
        assert all("voted 'no'" in i["error"] for i in noes)


def test_a_crash_is_a_failure_with_its_exit_code_and_stderr_in_the_outputs(lab: PlanLab) -> None:
    composition = vote(
        [
            {"id": "fine", "instances": {"count": 1}},
            {"id": "boom", "instances": {"count": 1}, "run": {"test_params": {"verdict": "crash"}}},
        ]
    )
    with lab.client() as client:
        task = finished(client, run(client, composition))
        assert task["result"]["outcomes"] == {
            "fine": {"ok": 1, "total": 1},
            "boom": {"ok": 0, "total": 1},
        }
        boom = client.get(f"/api/v1/plan-runs/{task['id']}").json()["groups"][1]["instances"][0]
        assert boom["state"] == "crash" and boom["exit_code"] == 3
        files = outputs_of(client, task["id"])
        outcome = json.loads(files[f"{task['id']}/boom/2/outcome.json"])
        assert outcome["exit_code"] == 3 and "crashing on purpose" in outcome["error"]
        assert b"crashing on purpose" in files[f"{task['id']}/boom/2/stderr.log"]


def zip_of(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_bad_archives_are_refused_before_anything_is_stored(lab: PlanLab) -> None:
    manifest = (
        (EXAMPLE_PLANS / "quorum" / "manifest.toml").read_bytes().replace(b'"quorum"', b'"evil"')
    )
    with lab.client() as client:
        for members, where in [
            ({"manifest.toml": manifest, "../escape.py": b"x"}, "archive:../escape.py"),
            ({"manifest.toml": manifest, "/abs.py": b"x"}, "archive:/abs.py"),
            ({"main.py": b"x"}, "archive:manifest.toml"),
            (
                {"manifest.toml": b"name = 'x y'\n[[testcases]]\nname='c'"},
                "archive:manifest.toml:/name",
            ),
        ]:
            response = client.post(
                "/api/v1/plans",
                content=zip_of(members),
                headers={"Content-Type": "application/zip"},
            )
            assert response.status_code == 422, response.text
            assert response.json()["errors"][0]["location"] == where
        too_big = client.post(
            "/api/v1/plans",
            content=b"\0" * (33 * 1024 * 1024),
            headers={"Content-Type": "application/zip"},
        )
        assert too_big.status_code == 413
        names = [p["name"] for p in client.get("/api/v1/plans").json()["plans"]]
        assert "evil" not in names and "x y" not in names


def test_bad_compositions_get_422_with_the_location(lab: PlanLab) -> None:
    good = vote([{"id": "a", "instances": {"count": 2}}])
    cases = [
        ({"global": {**good["global"], "total_instances": 3}}, "/global/total_instances"),
        ({"global": {**good["global"], "runner": "k8s"}}, "/global/runner"),
        ({"global": {**good["global"], "builder": "docker:go"}}, "/global/builder"),
        ({"global": {**good["global"], "case": "nope"}}, "/global/case"),
        ({"global": {**good["global"], "plan": "nope"}}, "/global/plan"),
        (
            {
                "groups": [
                    {"id": "a", "instances": {"count": 2}, "run": {"test_params": {"x": "1"}}}
                ]
            },
            "/groups/0/run/test_params/x",
        ),
        (
            {
                "global": {**good["global"], "total_instances": 101},
                "groups": [{"id": "a", "instances": {"count": 101}}],
            },
            "/global/total_instances",
        ),
    ]
    with lab.client() as client:
        for change, where in cases:
            response = client.post("/run", json={**good, **change})
            assert response.status_code == 422, (where, response.text)
            locations = [e["location"] for e in response.json()["errors"]]
            assert where in locations or any(loc.startswith(where) for loc in locations), (
                where,
                locations,
            )
        mismatched = client.post(
            "/build",
            files=[
                ("composition", ("c.json", json.dumps(good), "application/json")),
                ("plan", ("p.zip", zip_directory(EXAMPLE_PLANS / "ping"), "application/zip")),
            ],
        )
        assert mismatched.status_code == 422 and "/global/plan" in mismatched.text


def test_build_is_cached_by_content(lab: PlanLab) -> None:
    composition = EXAMPLE_PLANS / "ping" / "composition.toml"
    with lab.client() as client:
        results = []
        for _ in range(2):
            response = client.post(
                "/build",
                files=[
                    ("composition", ("c.toml", composition.read_bytes(), "application/toml")),
                    ("plan", ("p.zip", zip_directory(EXAMPLE_PLANS / "ping"), "application/zip")),
                ],
            )
            assert response.status_code == 201, response.text
            results.append(finished(client, response.json()["task_id"])["result"])
        assert results[0]["artifact"] == results[1]["artifact"] and results[1]["cached"]
        log = client.post("/logs", json={"task_id": response.json()["task_id"]}).text
        assert "entry main.py" in log and "(built before)" in log


def running(client: httpx.Client, run_id: str, count: int) -> bool:
    groups = client.get(f"/api/v1/plan-runs/{run_id}").json()["groups"]
    return sum(i["state"] == "running" for g in groups for i in g["instances"]) == count


def test_terminate_cancels_a_running_run(lab: PlanLab) -> None:
    composition = vote([{"id": "a", "instances": {"count": 2}}], case="linger")
    with lab.client() as client:
        run_id = run(client, composition)
        wait_until(lambda: running(client, run_id, 2), 30, 0.1, "instances running")

        def lingering() -> bool:
            states = client.get(f"/api/v1/plan-runs/{run_id}/sync").json()["states"]
            return states == [{"name": "lingering", "count": 2, "waiting": {"3": 2}}]

        wait_until(lingering, 30, 0.1, "both instances at the barrier")
        stopped = client.post("/terminate", json={"runner": "local:exec"}).json()["tasks"]
        assert run_id in stopped
        task = finished(client, run_id, 30)
        assert task["states"][-1]["state"] == "canceled"
        assert task["result"]["outcome"] == "canceled"


def test_an_agent_lost_mid_run_fails_its_instances_and_the_run_ends(lab: PlanLab) -> None:
    doomed = Agent(
        lab.workdir,
        lab.hub.url,
        "doomed",
        slots=1,
        labels={"pool": "doomed"},
        extra=["--cache-dir", str(lab.workdir / "cache-doomed")],
    ).start()
    composition = vote(
        [{"id": "a", "instances": {"count": 2}, "run": {"test_params": {"wait": "15s"}}}],
        case="linger",
        runner="cluster:agents",
        run_config={"labels": {"pool": "doomed"}},
    )
    with lab.client() as client:
        doomed.wait_online(client)
        run_id = run(client, composition)
        wait_until(lambda: running(client, run_id, 2), 30, 0.1, "instances running")
        doomed.kill()
        started = time.monotonic()
        task = finished(client, run_id, 30)
        assert time.monotonic() - started < 15
        assert task["result"] == {"outcome": "failure", "outcomes": {"a": {"ok": 0, "total": 2}}}
        instances = client.get(f"/api/v1/plan-runs/{run_id}").json()["groups"][0]["instances"]
        assert all(i["state"] == "failure" and "lost" in i["error"] for i in instances)


def test_healthcheck_checks_and_fixes(lab: PlanLab) -> None:
    with lab.client() as client:
        report = client.post("/healthcheck", json={"runner": "local:exec", "fix": True}).json()
        checks = {c["name"]: c["status"] for c in report["checks"]}
        assert checks["local agent online"] == "ok" and checks["runs finished"] == "ok"
        assert {f["name"] for f in report["fixes"]} == {"runs finished", "stored archives"}
        assert client.post("/healthcheck", json={"runner": "nope"}).status_code == 422
    result = lab.cli("healthcheck", "--runner", "cluster:agents")
    assert "agents online" in result.stdout


def test_an_instance_past_the_timeout_fails_and_late_reports_change_nothing(lab: PlanLab) -> None:
    composition = vote(
        [{"id": "slow", "instances": {"count": 2}, "run": {"test_params": {"wait": "60s"}}}],
        case="linger",
        run_config={"timeout": "2s"},
    )
    with lab.client() as client:
        started = time.monotonic()
        task = finished(client, run(client, composition), 30)
        assert time.monotonic() - started < 20
        assert task["result"]["outcomes"] == {"slow": {"ok": 0, "total": 2}}
        instances = client.get(f"/api/v1/plan-runs/{task['id']}").json()["groups"][0]["instances"]
        assert all(i["error"] == "timed out after 2 s" for i in instances)
        late = client.post(
            f"/api/v1/plan-runs/{task['id']}/instances",
            json={"reports": [{"seq": 1, "state": "success"}, {"seq": 1, "state": "success"}]},
        )
        assert late.json() == {"changed": 0}
        again = client.post("/status", json={"task_id": task["id"]}).json()
        assert again["result"] == task["result"]


def test_the_plan_commands(lab: PlanLab) -> None:
    listed = lab.cli("list")
    assert listed.returncode == 0 and "ping" in listed.stdout and "quorum" in listed.stdout
    shown = lab.cli("show", "quorum")
    assert "case vote: 1..100 instances" in shown.stdout and "verdict: string" in shown.stdout
    assert lab.cli("show", "nope").returncode == 1
    bad = lab.cli("run", str(EXAMPLE_PLANS / "quorum" / "manifest.toml"))
    assert bad.returncode == 2 and "at /" in bad.stderr
    with lab.client() as client:
        task = finished(client, run(client, vote([{"id": "a", "instances": {"count": 1}}])))
    tasks = lab.cli("tasks", "--type", "run", "--limit", "3")
    assert task["id"] in tasks.stdout and "success" in tasks.stdout
    status = lab.cli("status", task["id"])
    assert "outcome: success" in status.stdout and "a: 1/1 ok" in status.stdout
    assert "instances ended: 1 success" in lab.cli("logs", task["id"]).stdout
    saved = lab.cli("outputs", task["id"], "-o", "out.tgz")
    assert saved.returncode == 0 and (lab.workdir / "out.tgz").stat().st_size > 0
    composition = str(EXAMPLE_PLANS / "ping" / "composition.toml")
    built = lab.cli("build", composition, "--plan-dir", str(EXAMPLE_PLANS / "ping"))
    assert built.returncode == 0 and '"artifact"' in built.stdout, built.stderr
