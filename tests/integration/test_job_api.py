"""The job API against a real hub and agent: Start, Status, Stop, Retry, List, Version."""

from __future__ import annotations

import httpx
import pytest
import yaml

from tests.support.jobs import cmd_job, echo_job, start, tasks_of, wait_state, wait_task_running

pytestmark = pytest.mark.integration


def test_version_names_api_and_server(client: httpx.Client) -> None:
    response = client.get("/api/v1/version")
    assert response.status_code == 200
    body = response.json()
    assert body["version"] == 1
    assert body["server_id"] == response.headers["X-Testfleet-Server-Id"]


def test_unknown_api_version_is_400_naming_both(client: httpx.Client) -> None:
    response = client.get("/api/v1/jobs", headers={"X-Testfleet-Api-Version": "9"})
    assert response.status_code == 400
    message = response.json()["message"]
    assert "'9'" in message and "version 1" in message


def test_echo_and_cmd_job_completes_with_full_status(client: httpx.Client) -> None:
    descriptor = {
        "name": "smoke",
        "tags": ["nightly", "smoke"],
        "tests": [
            {
                "name": "hello",
                "steps": [
                    {"name": "say", "plugin": "echo", "params": {"text": "hi there"}},
                    {
                        "name": "run",
                        "plugin": "cmd",
                        "timeout": "30s",
                        "params": {"executable": "python3", "args": ["-c", "print(6 * 7)"]},
                    },
                ],
            }
        ],
        "reporting": {
            "run_reporters": [{"name": "target_success", "params": {"threshold": ">80%"}}],
            "final_reporters": [{"name": "noop"}],
        },
    }
    job_id = start(client, descriptor)
    status = wait_state(client, job_id)
    assert status["state"] == "completed", status
    assert status["requestor"] == "anonymous"
    assert status["tags"] == ["nightly", "smoke"]
    assert status["started_at"] and status["ended_at"] and status["server_id"]
    (run,) = status["runs"]
    assert run["state"] == "passed"
    assert run["reporters"][0]["success"] is True
    (task,) = tasks_of(status)
    assert task["agent"] == "agent-a" and task["attempt"] == 1 and task["state"] == "passed"
    assert [(s["name"], s["state"], s["exit_code"]) for s in task["steps"]] == [
        ("say", "passed", 0),
        ("run", "passed", 0),
    ]
    assert status["final_reporters"][0]["name"] == "noop"
    logs = client.get(f"/api/v1/jobs/{job_id}/logs").text
    assert logs == "hi there\n42\n"
    assert client.get(f"/api/v1/jobs/{job_id}/logs", params={"step": 1}).text == "42\n"


def test_yaml_descriptor_is_accepted(client: httpx.Client) -> None:
    body = yaml.safe_dump(echo_job("from-yaml", text="yaml"))
    response = client.post(
        "/api/v1/jobs", content=body, headers={"Content-Type": "application/yaml"}
    )
    assert response.status_code == 201, response.text
    assert wait_state(client, response.json()["job_id"])["state"] == "completed"


def test_contest_descriptor_is_mapped_and_runs(client: httpx.Client) -> None:
    contest = {
        "JobName": "contest-style",
        "Runs": 1,
        "RunInterval": "1s",
        "Tags": ["contest"],
        "TestDescriptors": [
            {
                "TargetManagerName": "TargetList",
                "TargetManagerAcquireParameters": {"Targets": [{"ID": "agent-a:slot-0"}]},
                "TestFetcherName": "literal",
                "TestFetcherFetchParameters": {
                    "TestName": "literal test",
                    "Steps": [
                        {
                            "name": "cmd",
                            "label": "say",
                            "parameters": {"executable": ["echo"], "args": ["Hello"]},
                        }
                    ],
                },
            }
        ],
        "Reporting": {
            "RunReporters": [
                {"Name": "TargetSuccess", "Parameters": {"SuccessExpression": ">80%"}}
            ],
            "FinalReporters": [{"Name": "noop"}],
        },
    }
    job_id = start(client, contest)
    status = wait_state(client, job_id)
    assert status["state"] == "completed", status
    assert status["name"] == "contest-style"
    (task,) = tasks_of(status)
    assert task["device_id"] == "agent-a:slot-0"
    assert client.get(f"/api/v1/jobs/{job_id}/logs").text == "Hello\n"


def test_failed_step_ends_the_pass_and_fails_the_job(client: httpx.Client) -> None:
    descriptor = {
        "name": "fails",
        "tests": [
            {
                "name": "t",
                "steps": [
                    {
                        "name": "bad",
                        "plugin": "cmd",
                        "params": {"executable": "python3", "args": ["-c", "raise SystemExit(3)"]},
                    },
                    {"name": "never", "plugin": "echo", "params": {"text": "x"}},
                ],
            }
        ],
    }
    status = wait_state(client, start(client, descriptor))
    assert status["state"] == "failed"
    (task,) = tasks_of(status)
    assert task["state"] == "failed"
    assert [(s["state"], s["exit_code"]) for s in task["steps"]] == [
        ("failed", 3),
        ("skipped", None),
    ]
    assert "exited with code 3" in status["error"]


def test_retry_parameters_try_the_test_again(client: httpx.Client) -> None:
    status = wait_state(client, start(client, cmd_job("retried", "raise SystemExit(1)", retry=2)))
    assert status["state"] == "failed"
    test = status["runs"][0]["tests"][0]
    assert test["attempts"] == 3
    assert [t["attempt"] for t in test["tasks"]] == [1, 2, 3]


def test_test_runs_on_each_device_in_parallel(client: httpx.Client) -> None:
    code = "import time; time.sleep(1)"
    status = wait_state(client, start(client, cmd_job("parallel", code, count=2)))
    assert status["state"] == "completed"
    tasks = tasks_of(status)
    assert sorted(t["device_id"] for t in tasks) == ["agent-a:slot-0", "agent-a:slot-1"]
    first_end = min(t["ended_at"] for t in tasks)
    assert max(t["started_at"] for t in tasks) < first_end  # they overlapped


def test_runs_repeat_and_tests_run_one_after_another(client: httpx.Client) -> None:
    descriptor = {
        "name": "repeat",
        "runs": 2,
        "run_interval": "0.2s",
        "tests": [
            {"name": "first", "steps": [{"name": "a", "plugin": "echo", "params": {"text": "1"}}]},
            {"name": "second", "steps": [{"name": "b", "plugin": "echo", "params": {"text": "2"}}]},
        ],
    }
    status = wait_state(client, start(client, descriptor))
    assert status["state"] == "completed"
    assert [r["number"] for r in status["runs"]] == [1, 2]
    for run in status["runs"]:
        first, second = run["tests"]
        assert first["ended_at"] <= second["started_at"]
    assert client.get(f"/api/v1/jobs/{status['job_id']}/logs").text == "1\n2\n1\n2\n"


def test_runs_zero_repeats_until_stopped(client: httpx.Client) -> None:
    descriptor = echo_job("forever", runs=0, run_interval="0.1s")
    job_id = start(client, descriptor)
    wait_state(client, job_id, {"running"})
    for _ in range(200):
        if len(client.get(f"/api/v1/jobs/{job_id}").json()["runs"]) >= 3:
            break
        __import__("time").sleep(0.05)
    assert client.post(f"/api/v1/jobs/{job_id}/stop").status_code == 202
    status = wait_state(client, job_id)
    assert status["state"] == "cancelled"
    assert len(status["runs"]) >= 3


def test_stop_cancels_a_running_step(client: httpx.Client) -> None:
    job_id = start(client, cmd_job("long", "import time; time.sleep(60)"))
    wait_task_running(client, job_id)
    response = client.post(f"/api/v1/jobs/{job_id}/stop")
    assert response.status_code == 202
    assert response.json()["state"] == "cancelling"
    status = wait_state(client, job_id, timeout=20)
    assert status["state"] == "cancelled"
    (task,) = tasks_of(status)
    assert task["state"] == "cancelled"
    assert task["steps"][0]["state"] == "cancelled"
    devices = client.get("/api/v1/devices").json()["devices"]
    assert all(d["holder_job_id"] != job_id for d in devices)


def test_stop_of_finished_job_is_409_and_unknown_is_404(client: httpx.Client) -> None:
    job_id = start(client, echo_job())
    wait_state(client, job_id)
    response = client.post(f"/api/v1/jobs/{job_id}/stop")
    assert response.status_code == 409
    assert response.json()["code"] == "job_finished"
    for method, path in (
        ("GET", "/api/v1/jobs/999999"),
        ("POST", "/api/v1/jobs/999999/stop"),
        ("POST", "/api/v1/jobs/999999/retry"),
        ("GET", "/api/v1/jobs/999999/events"),
    ):
        response = client.request(method, path)
        assert response.status_code == 404, path
        assert response.json()["code"] == "job_not_found"


def test_retry_makes_a_new_job_and_refuses_a_running_one(client: httpx.Client) -> None:
    running = start(client, cmd_job("slow", "import time; time.sleep(30)"))
    response = client.post(f"/api/v1/jobs/{running}/retry")
    assert response.status_code == 409
    assert response.json()["code"] == "job_not_finished"
    client.post(f"/api/v1/jobs/{running}/stop")
    wait_state(client, running)
    response = client.post(f"/api/v1/jobs/{running}/retry")
    assert response.status_code == 201
    new_id = response.json()["job_id"]
    assert new_id != running and response.json()["retried_from"] == running
    client.post(f"/api/v1/jobs/{new_id}/stop")
    status = wait_state(client, new_id)
    assert status["retried_from"] == running
    assert status["descriptor"] == client.get(f"/api/v1/jobs/{running}").json()["descriptor"]


def test_list_filters_and_pages(client: httpx.Client) -> None:
    ids = [start(client, echo_job("listed", tags=["list-test", f"n{i}"])) for i in range(5)]
    for job_id in ids:
        wait_state(client, job_id)
    page = client.get("/api/v1/jobs", params={"tag": "list-test", "limit": 2}).json()
    seen = [j["job_id"] for j in page["jobs"]]
    while page["next_cursor"]:
        page = client.get(
            "/api/v1/jobs", params={"tag": "list-test", "limit": 2, "cursor": page["next_cursor"]}
        ).json()
        seen += [j["job_id"] for j in page["jobs"]]
    assert seen == sorted(ids, reverse=True)
    both = client.get("/api/v1/jobs", params=[("tag", "list-test"), ("tag", "n3")]).json()
    assert [j["job_id"] for j in both["jobs"]] == [ids[3]]
    by_state = client.get(
        "/api/v1/jobs", params={"state": "completed", "name": "listed", "requestor": "anonymous"}
    ).json()
    assert set(ids) <= {j["job_id"] for j in by_state["jobs"]}
    none = client.get("/api/v1/jobs", params={"tag": "list-test", "state": "failed"}).json()
    assert none["jobs"] == []
    created = client.get(f"/api/v1/jobs/{ids[2]}").json()["created_at"]
    after = client.get("/api/v1/jobs", params={"tag": "list-test", "created_after": created}).json()
    assert [j["job_id"] for j in after["jobs"]] == [ids[4], ids[3], ids[2]]


def test_list_bad_input_is_located(client: httpx.Client) -> None:
    response = client.get("/api/v1/jobs", params={"state": "bogus"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["location"] == "query.state.0"
    response = client.get("/api/v1/jobs", params={"limit": 0})
    assert response.status_code == 422
    response = client.get("/api/v1/jobs", params={"cursor": "garbage!"})
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_cursor"


def test_invalid_descriptors_get_422_with_the_path(client: httpx.Client) -> None:
    response = client.post(
        "/api/v1/jobs",
        json={
            "name": "bad",
            "tests": [
                {
                    "name": "t",
                    "steps": [{"name": "s", "plugin": "echo", "params": {}, "timeout": "5x"}],
                }
            ],
        },
    )
    assert response.status_code == 422
    locations = {e["location"] for e in response.json()["errors"]}
    assert "/tests/0/steps/0/timeout" in locations
    response = client.post(
        "/api/v1/jobs",
        json={
            "name": "bad",
            "tests": [{"name": "t", "steps": [{"name": "s", "plugin": "frobnicate"}]}],
        },
    )
    assert response.status_code == 422
    assert "known plugins: cmd, echo, sleep" in response.json()["message"]
    response = client.post(
        "/api/v1/jobs",
        json={
            "name": "bad",
            "tests": [
                {"name": "t", "steps": [{"name": "s", "plugin": "echo", "params": {"txt": "x"}}]}
            ],
        },
    )
    assert response.status_code == 422
    locations = {e["location"] for e in response.json()["errors"]}
    assert locations == {"/tests/0/steps/0/params/text", "/tests/0/steps/0/params/txt"}
    response = client.post(
        "/api/v1/jobs", content=b'{"name": "x",', headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert "line 1" in response.json()["message"]
    before = client.get("/api/v1/jobs", params={"limit": 1}).json()["jobs"]
    response = client.post("/api/v1/jobs", json=["not", "an", "object"])
    assert response.status_code == 422
    assert client.get("/api/v1/jobs", params={"limit": 1}).json()["jobs"] == before


def test_events_page_and_follow(client: httpx.Client) -> None:
    job_id = start(
        client, cmd_job("events", "import time\nfor i in range(3):\n print(i); time.sleep(0.2)")
    )
    kinds: list[str] = []
    with client.stream("GET", f"/api/v1/jobs/{job_id}/events", params={"follow": "true"}) as stream:
        for line in stream.iter_lines():
            if line.startswith("event: "):
                kinds.append(line[len("event: ") :])
    assert kinds[0] == "job_queued"
    assert kinds[-2:] == ["job_finished", "end"]
    assert kinds.count("log") >= 1
    page = client.get(f"/api/v1/jobs/{job_id}/events", params={"limit": 3}).json()
    assert len(page["events"]) == 3
    rest = client.get(f"/api/v1/jobs/{job_id}/events", params={"after": page["next_after"]}).json()
    assert [e["kind"] for e in page["events"] + rest["events"]] == kinds[:-1]
