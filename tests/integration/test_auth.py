"""Bearer tokens with roles; the requestor recorded is the token's name."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import LiveHub
from tests.support.jobs import cmd_job, echo_job, start, wait_state
from tests.support.processes import Agent, cli_command, free_port, wait_until

pytestmark = pytest.mark.integration


def test_no_or_bad_token_is_401(auth_hub: LiveHub) -> None:
    with httpx.Client(base_url=auth_hub.url, timeout=30) as anonymous:
        response = anonymous.get("/api/v1/jobs")
        assert response.status_code == 401
        assert response.json()["code"] == "unauthenticated"
        response = anonymous.get("/api/v1/jobs", headers={"Authorization": "Bearer tf_nope"})
        assert response.status_code == 401
        assert response.json()["code"] == "invalid_token"
        assert anonymous.get("/api/v1/version").status_code == 200  # version stays open


def test_roles_limit_what_a_token_may_do(auth_hub: LiveHub) -> None:
    with auth_hub.client() as admin:
        tokens = {
            role: admin.post("/api/v1/tokens", json={"name": f"{role}-1", "role": role})
            for role in ("operator", "viewer", "agent")
        }
    assert all(r.status_code == 201 for r in tokens.values())
    with auth_hub.client(tokens["viewer"].json()["token"]) as viewer:
        assert viewer.get("/api/v1/jobs").status_code == 200
        response = viewer.post("/api/v1/jobs", json=echo_job())
        assert response.status_code == 403
        assert "operator" in response.json()["message"]
    with auth_hub.client(tokens["agent"].json()["token"]) as agent:
        assert agent.get("/api/v1/jobs").status_code == 403
    with auth_hub.client(tokens["operator"].json()["token"]) as operator:
        job_id = start(operator, echo_job("by-operator"))
        status = wait_state(operator, job_id)
        assert status["requestor"] == "operator-1"
        assert operator.get("/api/v1/tokens").status_code == 403
        listed = operator.get("/api/v1/jobs", params={"requestor": "operator-1"}).json()
        assert [j["job_id"] for j in listed["jobs"]] == [job_id]


def test_admin_lists_and_revokes_tokens(auth_hub: LiveHub) -> None:
    with auth_hub.client() as admin:
        created = admin.post("/api/v1/tokens", json={"name": "short-lived", "role": "viewer"})
        token_id, secret = created.json()["token_id"], created.json()["token"]
        listed = admin.get("/api/v1/tokens").json()["tokens"]
        assert any(t["token_id"] == token_id for t in listed)
        assert all("token" not in t and secret not in str(t) for t in listed)
        with auth_hub.client(secret) as viewer:
            assert viewer.get("/api/v1/jobs").status_code == 200
            assert admin.delete(f"/api/v1/tokens/{token_id}").status_code == 204
            assert viewer.get("/api/v1/jobs").status_code == 401
        assert admin.delete(f"/api/v1/tokens/{token_id}").status_code == 404
        bad = admin.post("/api/v1/tokens", json={"name": "x", "role": "superuser"})
        assert bad.status_code == 422
        assert bad.json()["errors"][0]["location"] == "/role"


def test_stop_records_the_requestor(auth_hub: LiveHub) -> None:
    with auth_hub.client() as admin:
        job_id = start(
            admin,
            {
                "name": "to-stop",
                "tests": [
                    {
                        "name": "t",
                        "steps": [
                            {"name": "wait", "plugin": "sleep", "params": {"duration": "30s"}}
                        ],
                    }
                ],
            },
        )
        assert admin.post(f"/api/v1/jobs/{job_id}/stop").status_code == 202
        wait_state(admin, job_id)
        events = admin.get(
            f"/api/v1/jobs/{job_id}/events", params={"kind": "job_stop_requested"}
        ).json()["events"]
        assert [e["data"]["requestor"] for e in events] == ["root-admin"]


def test_agent_with_a_bad_token_is_refused_with_a_reason(auth_hub: LiveHub) -> None:
    result = subprocess.run(
        [
            *cli_command(),
            "agent",
            "--hub",
            auth_hub.url,
            "--name",
            "intruder",
            "--token",
            "tf_wrong",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "invalid_token" in result.stderr


def test_hub_on_a_public_address_refuses_to_start_without_auth(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            *cli_command(),
            "hub",
            "--host",
            "0.0.0.0",
            "--port",
            str(free_port()),
            "--data-dir",
            str(tmp_path),
            "--no-auth",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "refusing to serve on 0.0.0.0 without auth" in result.stderr


def test_token_create_prints_only_the_token(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            *cli_command(),
            "token",
            "create",
            "--name",
            "ci",
            "--role",
            "operator",
            "--data-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout.startswith("tf_") and result.stdout.count("\n") == 1
    bad = subprocess.run(
        [
            *cli_command(),
            "token",
            "create",
            "--name",
            "ci",
            "--role",
            "root",
            "--data-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "not a role" in bad.stderr


def test_token_list_and_revoke_through_the_cli(auth_hub: LiveHub) -> None:
    base = [*cli_command(), "--hub", auth_hub.url, "--token", str(auth_hub.admin_token)]
    with auth_hub.client() as admin:
        token_id = admin.post("/api/v1/tokens", json={"name": "cli-made", "role": "viewer"}).json()[
            "token_id"
        ]
    listed = subprocess.run(
        [*base, "token", "list", "--json"], capture_output=True, text=True, timeout=60, check=True
    )
    names = {t["name"]: t for t in json.loads(listed.stdout)["tokens"]}
    assert names["cli-made"]["revoked_at"] is None and "root-admin" in names
    revoked = subprocess.run(
        [*base, "token", "revoke", str(token_id)], capture_output=True, text=True, timeout=60
    )
    assert revoked.returncode == 0, revoked.stderr
    again = subprocess.run(
        [*base, "token", "revoke", str(token_id)], capture_output=True, text=True, timeout=60
    )
    assert again.returncode == 1 and "already revoked" in again.stderr
    viewer = subprocess.run(
        [*cli_command(), "--hub", auth_hub.url, "token", "list"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert viewer.returncode == 1 and "requires a token" in viewer.stderr


def test_revoking_a_token_ends_its_agent_and_its_event_streams_within_a_second(
    auth_hub: LiveHub, tmp_path: Path
) -> None:
    with auth_hub.client() as admin:
        created = admin.post("/api/v1/tokens", json={"name": "short", "role": "agent"}).json()
        viewer = admin.post("/api/v1/tokens", json={"name": "watcher", "role": "viewer"}).json()
        agent = Agent(tmp_path, auth_hub.url, "revoked-node", token=created["token"]).start()
        agent.wait_online(admin)
        job_id = start(admin, cmd_job("slow", "import time; time.sleep(30)"))
        with httpx.Client(base_url=auth_hub.url, timeout=30) as client:
            headers = {"Authorization": f"Bearer {viewer['token']}"}
            params = {"follow": "true"}
            with client.stream(
                "GET", f"/api/v1/jobs/{job_id}/events", params=params, headers=headers
            ) as stream:
                lines = stream.iter_lines()
                assert next(lines).startswith("id: ")  # the stream is live
                began = time.monotonic()
                admin.delete(f"/api/v1/tokens/{viewer['token_id']}")
                rest = list(lines)
                stream_closed = time.monotonic() - began
        began = time.monotonic()
        admin.delete(f"/api/v1/tokens/{created['token_id']}")
        assert agent.process is not None
        process = agent.process
        wait_until(lambda: not process.alive(), 5, what="the revoked agent to stop")
        agent_gone = time.monotonic() - began
        admin.post(f"/api/v1/jobs/{job_id}/stop")
    assert "event: closed" in rest
    assert any("token was revoked" in line for line in rest)
    assert stream_closed < 1.0
    assert agent_gone < 2.0  # closed within 1 s; the process then exits
    assert "token_revoked" in process.log_path.read_text()
