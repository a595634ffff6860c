"""Signing in to the web UI (the cookie), and the Origin checks that keep a cookie (or a hub
without auth) from acting for a page of another site."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from testfleet.hub.auth import SESSION_COOKIE
from testfleet.protocol.wire import utcnow
from testfleet.store import tokens as token_store
from tests.support.inproc import RunningHub, one_test_job, running_hub

pytestmark = pytest.mark.anyio
HUB = "http://hub"
ELSEWHERE = "http://evil.example"


async def token(hub: RunningHub, name: str, role: str) -> str:
    _, secret = await hub.hub.store.write(
        token_store.create_token, name, role, utcnow(), created_by="test"
    )
    return str(secret)


async def sign_in(hub: RunningHub, secret: str) -> httpx.Response:
    return await hub.api.post(
        "/api/v1/auth/session", json={"token": secret}, headers={"Origin": HUB}
    )


async def test_signing_in_sets_an_httponly_samesite_strict_cookie(tmp_path: Path) -> None:
    async with running_hub(tmp_path, auth=True, max_running_jobs=0) as hub:
        secret = await token(hub, "olga", "operator")
        answer = await sign_in(hub, secret)
        me = await hub.api.get("/api/v1/auth/me")
        started = await hub.api.post("/api/v1/jobs", json=one_test_job(), headers={"Origin": HUB})
        signed_out = await hub.api.delete("/api/v1/auth/session", headers={"Origin": HUB})
        hub.api.cookies.clear()
        after = await hub.api.get("/api/v1/auth/me")
    assert answer.status_code == 200, answer.text
    assert answer.json() | {"server_id": ""} == {
        "name": "olga",
        "role": "operator",
        "auth_enabled": True,
        "via": "cookie",
        "server_id": "",
    }
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}={secret};")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    assert me.json()["name"] == "olga" and me.json()["via"] == "cookie"
    assert started.status_code == 201, started.text
    assert signed_out.status_code == 204
    assert (
        "Max-Age=0" in signed_out.headers["set-cookie"]
        or "expires" in signed_out.headers["set-cookie"].lower()
    )
    assert after.status_code == 401 and after.json()["code"] == "unauthenticated"


async def test_a_cookie_cannot_act_for_another_site_or_an_unknown_one(tmp_path: Path) -> None:
    async with running_hub(tmp_path, auth=True, max_running_jobs=0) as hub:
        await sign_in(hub, await token(hub, "olga", "operator"))
        foreign = await hub.api.post(
            "/api/v1/jobs", json=one_test_job(), headers={"Origin": ELSEWHERE}
        )
        unknown = await hub.api.post("/api/v1/jobs", json=one_test_job())
        fetched = await hub.api.post(
            "/api/v1/jobs", json=one_test_job(), headers={"Sec-Fetch-Site": "same-origin"}
        )
        reading = await hub.api.get("/api/v1/jobs", headers={"Origin": ELSEWHERE})
        listed = (await hub.api.get("/api/v1/jobs")).json()["jobs"]
    assert (foreign.status_code, foreign.json()["code"]) == (403, "cross_origin")
    assert ELSEWHERE in foreign.json()["message"]
    assert (unknown.status_code, unknown.json()["code"]) == (403, "origin_required")
    assert fetched.status_code == 201
    assert reading.status_code == 200  # reading is not acting
    assert len(listed) == 1


async def test_a_hub_without_auth_refuses_changes_from_another_site(tmp_path: Path) -> None:
    async with running_hub(tmp_path, max_running_jobs=0) as hub:
        foreign = await hub.api.post(
            "/api/v1/jobs", json=one_test_job(), headers={"Origin": ELSEWHERE}
        )
        own = await hub.api.post("/api/v1/jobs", json=one_test_job(), headers={"Origin": HUB})
        program = await hub.api.post("/api/v1/jobs", json=one_test_job())
        me = (await hub.api.get("/api/v1/auth/me")).json()
        sign = await hub.api.post(
            "/api/v1/auth/session", json={"token": "x"}, headers={"Origin": HUB}
        )
    assert (foreign.status_code, foreign.json()["code"]) == (403, "cross_origin")
    assert own.status_code == 201 and program.status_code == 201
    assert (me["role"], me["auth_enabled"], me["via"]) == ("admin", False, "none")
    assert (sign.status_code, sign.json()["code"]) == (409, "auth_disabled")


@pytest.mark.parametrize(
    ("body", "status", "code", "location"),
    [
        ({"token": "tf_nope"}, 401, "invalid_token", None),
        ({"token": ""}, 422, "invalid_request", "/token"),
        ({}, 422, "invalid_request", "/token"),
        ({"token": "AGENT"}, 403, "forbidden", None),
    ],
)
async def test_signing_in_with_a_bad_token_says_why(
    tmp_path: Path, body: dict[str, str], status: int, code: str, location: str | None
) -> None:
    async with running_hub(tmp_path, auth=True) as hub:
        if body.get("token") == "AGENT":
            body = {"token": await token(hub, "rack1", "agent")}
        answer = await hub.api.post("/api/v1/auth/session", json=body, headers={"Origin": HUB})
    assert (answer.status_code, answer.json()["code"]) == (status, code)
    assert "set-cookie" not in answer.headers
    if location:
        assert answer.json()["errors"][0]["location"] == location


async def test_signing_in_from_another_site_is_refused(tmp_path: Path) -> None:
    async with running_hub(tmp_path, auth=True) as hub:
        secret = await token(hub, "olga", "viewer")
        answer = await hub.api.post(
            "/api/v1/auth/session", json={"token": secret}, headers={"Origin": ELSEWHERE}
        )
    assert (answer.status_code, answer.json()["code"]) == (403, "cross_origin")
    assert "set-cookie" not in answer.headers


async def test_a_viewer_signed_in_may_read_but_not_stop(tmp_path: Path) -> None:
    async with running_hub(tmp_path, auth=True, max_running_jobs=0) as hub:
        admin = await token(hub, "root", "admin")
        created = await hub.api.post(
            "/api/v1/jobs", json=one_test_job(), headers={"Authorization": f"Bearer {admin}"}
        )
        job_id = created.json()["job_id"]
        await sign_in(hub, await token(hub, "vic", "viewer"))
        status = await hub.api.get(f"/api/v1/jobs/{job_id}")
        stop = await hub.api.post(f"/api/v1/jobs/{job_id}/stop", headers={"Origin": HUB})
    assert status.status_code == 200
    assert (stop.status_code, stop.json()["code"]) == (403, "forbidden")
