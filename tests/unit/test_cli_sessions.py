"""`testfleet sessions` (list, show, kill) and `testfleet devices` filters against a fake hub."""

from __future__ import annotations

import json
from functools import partial
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from testfleet.cli import context
from testfleet.cli.main import app
from testfleet.client import Client

T = "2024-05-01T12:00:00Z"
SESSION = {
    "id": 3,
    "session_id": "abc123",
    "state": "active",
    "requestor": "alice",
    "device_id": "n1:chromium-0",
    "agent": "n1",
    "requested": {},
    "created_at": T,
    "last_command_at": T,
    "commands": 4,
    "idle_timeout": 60,
}
seen: list[httpx.Request] = []


def fake(request: httpx.Request) -> httpx.Response:
    seen.append(request)
    path, method = request.url.path, request.method
    if path == "/api/v1/sessions":
        return httpx.Response(200, json={"server_id": "h", "sessions": [SESSION]})
    if path == "/api/v1/sessions/3/commands":
        command = {
            "id": 1,
            "at": T,
            "method": "GET",
            "command": "GET /title",
            "status": 200,
            "duration_ms": 2.5,
        }
        return httpx.Response(
            200, json={"server_id": "h", "session": 3, "commands": [command], "next_after": 1}
        )
    if (method, path) == ("DELETE", "/api/v1/sessions/3"):
        ended = {**SESSION, "state": "ended", "end_reason": "killed by alice"}
        return httpx.Response(200, json=ended)
    if (method, path) == ("DELETE", "/api/v1/sessions/9"):
        body = {"code": "session_over", "message": "session 9 is already ended", "errors": []}
        return httpx.Response(409, json=body)
    if path == "/api/v1/devices":
        return httpx.Response(200, json={"server_id": "h", "devices": []})
    return httpx.Response(404, json={"code": "not_found", "message": path, "errors": []})


@pytest.fixture(autouse=True)
def hub(monkeypatch: pytest.MonkeyPatch) -> None:
    seen.clear()
    monkeypatch.setattr(context, "Client", partial(Client, transport=httpx.MockTransport(fake)))


def run(*args: str) -> Any:
    return CliRunner().invoke(app, list(args), env={"TESTFLEET_HUB": "http://hub.test"})


def test_sessions_lists_live_ones_by_default() -> None:
    result = run("sessions", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["sessions"][0]["session_id"] == "abc123"
    assert seen[0].url.params["state"] == "live"
    table = run("sessions", "--state", "all", "--agent", "n1")
    assert table.exit_code == 0 and "abc123" in table.stdout
    assert (seen[-1].url.params["state"], seen[-1].url.params["agent"]) == ("all", "n1")


def test_show_prints_the_command_timeline_and_kill_ends_a_session() -> None:
    shown = run("sessions", "show", "3")
    killed = run("sessions", "kill", "3")
    over = run("sessions", "kill", "9")
    assert shown.exit_code == 0 and "GET /title" in shown.stdout
    assert killed.exit_code == 0 and "session 3 is ended: killed by alice" in killed.stdout
    assert over.exit_code == 1 and "already ended" in over.stderr


def test_devices_filters_become_query_parameters() -> None:
    result = run(
        "devices", "--capability", "browserName=chrome", "--label", "pool=a", "--state", "free"
    )
    bad = run("devices", "--capability", "nonsense")
    assert result.exit_code == 0
    params = seen[0].url.params
    assert params.get_list("capability") == ["browserName=chrome"]
    assert (params["label"], params["state"]) == ("pool=a", "free")
    assert bad.exit_code == 2 and "KEY=VALUE" in bad.output
