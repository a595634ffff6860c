"""The `testfleet` commands against a fake hub: output, JSON and exit codes."""

from __future__ import annotations

import io
import json
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from rich.console import Console
from typer.testing import CliRunner

from testfleet.cli import context, output
from testfleet.cli.main import app
from testfleet.cli.output import UserInputError
from testfleet.client import ApiError, AsyncClient, Client, HubUnreachable

runner = CliRunner()

T = "2024-05-01T12:00:00Z"
GOOD = '{"name": "smoke", "tests": [{"name": "t", "steps": [{"name": "s", "plugin": "echo"}]}]}'


def job(job_id: int, state: str = "completed") -> dict[str, Any]:
    return {
        "job_id": job_id,
        "name": "smoke",
        "state": state,
        "requestor": "me",
        "tags": ["a"],
        "created_at": T,
    }


def status(job_id: int, state: str) -> dict[str, Any]:
    return {
        **job(job_id, state),
        "server_id": "hub-1",
        "runs_requested": 1,
        "descriptor": {},
        "runs": [
            {
                "number": 1,
                "state": "passed",
                "tests": [
                    {
                        "index": 0,
                        "name": "t",
                        "state": "passed",
                        "attempts": 1,
                        "tasks": [
                            {
                                "task_id": 4,
                                "device_id": "d1",
                                "device_name": "host-1",
                                "agent": "lab",
                                "state": "passed",
                                "attempt": 1,
                                "steps": [
                                    {
                                        "index": 0,
                                        "name": "s",
                                        "plugin": "echo",
                                        "state": "passed",
                                        "exit_code": 0,
                                    }
                                ],
                            }
                        ],
                    }
                ],
            }
        ],
    }


def record(event_id: int, kind: str, **data: Any) -> dict[str, Any]:
    return {"id": event_id, "kind": kind, "job_id": 7, "task_id": 4, "at": T, "data": data}


EVENTS = [
    record(1, "job_started"),
    record(2, "log", stream="stdout", text="hi\n", step_index=0),
    record(3, "job_finished", state="failed"),
]


class FakeHub:
    """Just enough of the API for the commands."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.final_state = "failed"

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        method, path = request.method, request.url.path
        params = request.url.params
        if path == "/api/v1/version":
            return ok({"version": 1, "server_id": "hub-1", "package_version": "0.1.0"})
        if path.startswith("/api/v1/jobs/99"):
            return fail(404, "not_found", "job 99 does not exist")
        if (method, path) == ("POST", "/api/v1/jobs"):
            if b"bad" in request.content:
                return fail(
                    422,
                    "invalid_descriptor",
                    "the descriptor is invalid",
                    [{"location": "/tests/0/steps/0/plugin", "message": "unknown plugin 'nope'"}],
                )
            return ok({"job_id": 7, "server_id": "hub-1"}, 201)
        if path == "/api/v1/jobs":
            cursor = params.get("cursor")
            return ok(
                {
                    "server_id": "hub-1",
                    "jobs": [job(2 if cursor else 3)],
                    "next_cursor": None if cursor else "c2",
                }
            )
        if path == "/api/v1/jobs/7":
            return ok(status(7, self.final_state))
        if path == "/api/v1/jobs/7/stop":
            return ok({"job_id": 7, "state": "cancelling", "server_id": "hub-1"}, 202)
        if path == "/api/v1/jobs/7/retry":
            return ok({"job_id": 8, "server_id": "hub-1", "retried_from": 7}, 201)
        if path == "/api/v1/jobs/7/events" and params.get("follow") == "true":
            body = "".join(
                f"id: {e['id']}\nevent: {e['kind']}\ndata: {json.dumps(e)}\n\n" for e in EVENTS
            )
            body += f'event: end\ndata: {{"state": "{self.final_state}"}}\n\n'
            return httpx.Response(200, text=body, headers={"Content-Type": "text/event-stream"})
        if path == "/api/v1/jobs/7/events":
            after = int(params["after"])
            page = [e for e in EVENTS if e["id"] > after][:2]
            return ok(
                {
                    "server_id": "hub-1",
                    "events": page,
                    "next_after": page[-1]["id"] if page else after,
                }
            )
        if path == "/api/v1/jobs/7/logs":
            return httpx.Response(200, text="hi\nthere")
        if path == "/api/v1/agents":
            return ok(
                {
                    "server_id": "hub-1",
                    "agents": [
                        {
                            "agent_id": 1,
                            "name": "lab",
                            "state": "online",
                            "version": "0.1.0",
                            "labels": {},
                            "devices": 2,
                        }
                    ],
                }
            )
        if path == "/api/v1/devices":
            return ok({"server_id": "hub-1", "devices": []})
        return fail(404, "not_found", f"no route {method} {path}")


def ok(body: Any, code: int = 200) -> httpx.Response:
    return httpx.Response(code, json=body)


def fail(code: int, name: str, message: str, errors: Any = ()) -> httpx.Response:
    return httpx.Response(
        code, json={"code": name, "message": message, "errors": list(errors), "server_id": "hub-1"}
    )


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> FakeHub:
    fake = FakeHub()
    monkeypatch.setattr(context, "Client", partial(Client, transport=httpx.MockTransport(fake)))
    monkeypatch.setattr(
        context, "AsyncClient", partial(AsyncClient, transport=httpx.MockTransport(fake))
    )
    return fake


def run(*args: str, stdin: str | None = None) -> Any:
    return runner.invoke(app, list(args), input=stdin, env={"TESTFLEET_HUB": "http://hub.test"})


def test_start_prints_only_the_job_id(hub: FakeHub, tmp_path: Path) -> None:
    path = tmp_path / "job.json"
    path.write_text(GOOD)
    result = run("job", "start", str(path))
    assert (result.exit_code, result.stdout) == (0, "7\n")
    assert hub.requests[0].headers["Content-Type"] == "application/json"
    assert str(hub.requests[0].url).startswith("http://hub.test/api/v1/jobs")


def test_start_reads_yaml_from_stdin(hub: FakeHub) -> None:
    result = run("job", "start", "-", stdin="name: smoke\ntests: []\n")
    assert (result.exit_code, result.stdout) == (0, "7\n")
    assert hub.requests[0].headers["Content-Type"] == "application/yaml"


def test_an_invalid_descriptor_shows_the_field_path_and_exits_2(hub: FakeHub) -> None:
    result = run("job", "start", "-", stdin='{"name": "bad"}')
    assert result.exit_code == 2
    assert "the descriptor is invalid (HTTP 422 invalid_descriptor)" in result.stderr
    assert "at /tests/0/steps/0/plugin: unknown plugin 'nope'" in result.stderr
    assert "Traceback" not in result.output


def test_a_bad_file_exits_2_before_calling_the_hub(hub: FakeHub, tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    path.write_text("name: [\n")
    result = run("job", "start", str(path))
    assert result.exit_code == 2
    assert f"{path} is not valid YAML" in result.stderr
    assert hub.requests == []


def test_start_follow_prints_events_and_exits_by_the_final_state(hub: FakeHub) -> None:
    result = run("job", "start", "--follow", "-", stdin=GOOD)
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0] == "job 7 started"
    assert any(line.endswith("#2 log task 4 [stdout] hi") for line in lines)
    assert "job 7 smoke failed" in result.stdout
    hub.final_state = "completed"
    assert run("job", "start", "-f", "-", stdin=GOOD).exit_code == 0


def test_unknown_job_exits_1_with_the_message(hub: FakeHub) -> None:
    result = run("job", "status", "99")
    assert result.exit_code == 1
    assert "job 99 does not exist (HTTP 404 not_found)" in result.stderr


def test_status_json_is_the_api_json(hub: FakeHub) -> None:
    result = run("job", "status", "7", "--json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["job_id"] == 7 and data["runs"][0]["tests"][0]["tasks"][0]["task_id"] == 4
    table = run("job", "status", "7")
    assert "task 4: host-1 on lab" in table.stdout


def test_stop_and_retry(hub: FakeHub) -> None:
    assert run("job", "stop", "7").stdout == "job 7: stop requested, now cancelling\n"
    assert run("job", "retry", "7").stdout == "8\n"


def test_list_filters_pages_and_json(hub: FakeHub) -> None:
    result = run(
        "job",
        "list",
        "--state",
        "running",
        "-s",
        "queued",
        "--tag",
        "a",
        "--requestor",
        "me",
        "--since",
        "2024-05-01T00:00:00",
        "--limit",
        "1",
    )
    assert result.exit_code == 0, result.output
    assert "--cursor c2" in result.stderr
    params = hub.requests[0].url.params
    assert params.get_list("state") == ["running", "queued"]
    assert params["created_after"] == "2024-05-01T00:00:00Z"
    assert params["limit"] == "1"
    every = json.loads(run("job", "list", "--all", "--json").stdout)
    assert [j["job_id"] for j in every["jobs"]] == [3, 2]
    assert every["next_cursor"] is None


def test_list_rejects_a_bad_state_or_time(hub: FakeHub) -> None:
    assert run("job", "list", "--state", "sleeping").exit_code == 2
    result = run("job", "list", "--since", "last tuesday")
    assert result.exit_code == 2
    assert hub.requests == []


def test_events_pages_and_json(hub: FakeHub) -> None:
    result = run("job", "events", "7")
    assert [line.split(" ", 2)[1] for line in result.stdout.splitlines()] == ["#1", "#2", "#3"]
    data = json.loads(run("job", "events", "7", "--json").stdout)
    assert [e["id"] for e in data["events"]] == [1, 2, 3]
    follow = run("job", "events", "7", "--follow", "--json")
    assert [json.loads(line)["id"] for line in follow.stdout.splitlines()] == [1, 2, 3]


def test_raw_logs_are_written_as_they_are(hub: FakeHub) -> None:
    result = run("job", "logs", "7", "--raw", "--task", "4", "--step", "0")
    assert result.stdout == "hi\nthere\n"
    assert hub.requests[1].url.params.multi_items() == [("task_id", "4"), ("step", "0")]


def test_log_lines_carry_their_device_and_steps_go_by_name(hub: FakeHub) -> None:
    assert run("job", "logs", "7").stdout == "host-1 | hi\n"
    assert run("job", "logs", "7", "--step", "s").stdout == "host-1 | hi\n"
    assert run("job", "logs", "7", "--step", "1").stdout == ""
    grouped = run("job", "logs", "7", "--by-task").stdout
    assert grouped == "== task 4 on host-1 ==\nhi\n"
    assert run("job", "logs", "7", "--follow").stdout == "host-1 | hi\n"
    unknown = run("job", "logs", "7", "--step", "nope")
    assert unknown.exit_code == 2 and "has no step named 'nope'" in unknown.stderr


def test_global_options_work_after_the_command(hub: FakeHub) -> None:
    from testfleet.cli.globals import hoist

    assert hoist(["job", "list", "--hub", "http://h", "--json", "--limit", "3"]) == [
        "--hub",
        "http://h",
        "--json",
        "job",
        "list",
        "--limit",
        "3",
    ]
    assert hoist(["agent", "--hub", "http://h", "--timeout=3"]) == [
        "--timeout=3",
        "agent",
        "--hub",
        "http://h",
    ]
    assert hoist(["job", "start", "f", "--", "--json"]) == ["job", "start", "f", "--", "--json"]
    data = json.loads(run("--json", "job", "list").stdout)
    assert data["jobs"][0]["job_id"] == 3


def test_inventory_and_version(hub: FakeHub) -> None:
    assert "lab" in run("agents").stdout
    assert json.loads(run("devices", "--json").stdout)["devices"] == []
    assert "no devices" in run("devices").stderr
    version = json.loads(run("version", "--json").stdout)
    assert version["hub"]["server_id"] == "hub-1" and version["client"]["api_version"] == 1


def test_global_options_and_token(hub: FakeHub) -> None:
    result = runner.invoke(app, ["--hub", "http://other.test", "--token", "s3", "agents"])
    assert result.exit_code == 0
    request = hub.requests[0]
    assert request.url.host == "other.test"
    assert request.headers["Authorization"] == "Bearer s3"


def test_an_unreachable_hub_exits_1() -> None:
    result = runner.invoke(app, ["--hub", "http://127.0.0.1:1", "job", "list"])
    assert result.exit_code == 1
    assert "cannot reach the testfleet hub at http://127.0.0.1:1" in result.stderr
    version = runner.invoke(app, ["--hub", "http://127.0.0.1:1", "version"])
    assert version.exit_code == 1 and "client  testfleet" in version.stdout


def test_a_bad_hub_url_exits_2() -> None:
    result = runner.invoke(app, ["job", "list"], env={"TESTFLEET_HUB": "hub:8470"})
    assert result.exit_code == 2
    assert "http://host:port" in result.stderr


def test_every_command_has_help() -> None:
    for command in (
        ["job", "start"],
        ["job", "status"],
        ["job", "stop"],
        ["job", "retry"],
        ["job", "list"],
        ["job", "events"],
        ["job", "logs"],
        ["agents"],
        ["devices"],
        ["version"],
    ):
        result = runner.invoke(app, [*command, "--help"])
        assert result.exit_code == 0 and "Usage" in result.stdout, command


def test_start_follow_on_a_terminal_uses_the_live_view(
    hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    screen = io.StringIO()
    terminal = Console(file=screen, force_terminal=True, width=120, color_system=None)
    monkeypatch.setattr(output, "stdout", terminal)
    hub.final_state = "completed"
    result = run("job", "start", "--follow", "-", stdin=GOOD)
    assert result.exit_code == 0, result.output
    shown = screen.getvalue()
    assert "task 4: host-1 on lab, attempt 1 passed" in shown
    assert "job 7 smoke completed" in shown


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (ApiError(422, "invalid_descriptor", "bad"), 2),
        (ApiError(400, "bad_request", "bad"), 2),
        (ApiError(404, "not_found", "no"), 1),
        (ApiError(503, "timeout", "slow"), 1),
        (HubUnreachable("http://h", "refused"), 1),
        (UserInputError("bad file"), 2),
    ],
)
def test_exit_codes(error: Exception, code: int) -> None:
    assert output.exit_code_for(error) == code
