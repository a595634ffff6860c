"""The WebDriver gateway in process: sessions created on matching devices, commands proxied
to the node as they are, devices freed when sessions end, bad input answered in W3C form."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from testfleet.protocol.wire import DeviceSpec
from tests.support.inproc import RunningHub, eventually, running_hub
from tests.support.w3c_node import FakeNode, fake_node

pytestmark = pytest.mark.anyio

CHROME = {"browserName": "chrome", "platformName": "linux", "browserVersion": "156.0.1"}
ASK_CHROME = {"capabilities": {"alwaysMatch": {"browserName": "chrome"}}}


def browser(node: FakeNode, name: str = "chrome-0", **caps: Any) -> DeviceSpec:
    return DeviceSpec(
        name=name,
        kind="browser",
        capabilities={**CHROME, **caps},
        url=node.url,
        session_capabilities={"goog:chromeOptions": {"args": ["--headless=new"]}},
    )


@asynccontextmanager
async def farm(
    tmp_path: Path, devices: int = 1, **settings: Any
) -> AsyncIterator[tuple[RunningHub, FakeNode]]:
    async with fake_node() as node, running_hub(tmp_path, **settings) as hub:
        await hub.agent(
            "a1", slots=0, devices=[browser(node, f"chrome-{i}") for i in range(devices)]
        )
        yield hub, node


async def new_session(
    api: httpx.AsyncClient, body: Any = ASK_CHROME, prefix: str = ""
) -> httpx.Response:
    return await api.post(f"{prefix}/session", json=body, timeout=20)


async def device_states(hub: RunningHub) -> dict[str, str]:
    devices = (await hub.api.get("/api/v1/devices")).json()["devices"]
    return {d["device_id"]: d["state"] for d in devices}


async def test_a_session_is_created_on_a_matching_device_and_commands_pass_through(
    tmp_path: Path,
) -> None:
    async with farm(tmp_path) as (hub, node):
        created = await new_session(hub.api, prefix="/wd/hub")
        assert created.status_code == 200, created.text
        value = created.json()["value"]
        session_id = value["sessionId"]
        asked = node.requests[0]["capabilities"]["alwaysMatch"]
        title = await hub.api.get(f"/session/{session_id}/title")
        echoed = await hub.api.post(f"/wd/hub/session/{session_id}/echo", json={"a": [1, 2]})
        missing = await hub.api.post(f"/session/{session_id}/element", json={"using": "css"})
        busy = await device_states(hub)
        deleted = await hub.api.delete(f"/session/{session_id}")
        free = await device_states(hub)
        after = await hub.api.get(f"/session/{session_id}/title")
        metrics = (await hub.api.get("/metrics")).text

    assert value["capabilities"]["tf:device"] == "a1:chrome-0"
    assert asked["goog:chromeOptions"] == {"args": ["--headless=new"]}  # the device's additions
    assert asked["browserVersion"] == "156.0.1"
    assert title.json() == {"value": "Fake page"}
    assert echoed.json() == {"a": [1, 2]}
    assert missing.status_code == 404  # the node's error, verbatim
    assert missing.json()["value"] == {
        "error": "no such element",
        "message": "fake: no element matches",
        "stacktrace": "at fake",
    }
    assert busy == {"a1:chrome-0": "busy"}
    assert deleted.status_code == 200 and node.deleted == [session_id]
    assert free == {"a1:chrome-0": "free"}
    assert after.status_code == 404
    assert after.json()["value"]["error"] == "invalid session id"
    assert 'testfleet_webdriver_sessions_total{outcome="created"} 1.0' in metrics
    assert "testfleet_webdriver_commands_total 3.0" in metrics
    assert "testfleet_device_requests_waiting 0.0" in metrics


async def test_the_path_reaches_the_node_as_the_client_encoded_it(tmp_path: Path) -> None:
    async with farm(tmp_path) as (hub, node):
        session_id = (await new_session(hub.api)).json()["value"]["sessionId"]
        crafted = "/x%0D%0Ax-injected:%20yes%0D%0A/%E2%82%AC"
        await hub.api.get(f"/session/{session_id}{crafted}?q=a%20b")
        await hub.api.get(f"/session/{session_id}/title/\u20ac")  # httpx encodes it

    (crafted_path, headers), (plain_path, _) = node.arrived[-2:]
    assert crafted_path == f"/session/{session_id}{crafted}".encode()
    assert b"x-injected" not in dict(headers)
    assert plain_path == f"/session/{session_id}/title/%E2%82%AC".encode()


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ("not json", "not JSON"),
        ([], "/: the body must be a JSON object"),
        ({}, "/capabilities: required"),
        ({"desiredCapabilities": {}}, "legacy"),
        ({"capabilities": {"alwaysMatch": []}}, "/capabilities/alwaysMatch: must be an object"),
        ({"capabilities": {"firstMatch": []}}, "/capabilities/firstMatch: must be a non-empty"),
        ({"capabilities": {"alwaysMatch": {"browserName": 3}}}, "alwaysMatch/browserName"),
        ({"capabilities": {"alwaysMatch": {"colour": "red"}}}, "alwaysMatch/colour: not a W3C"),
        (
            {"capabilities": {"alwaysMatch": {"a:b": 1}, "firstMatch": [{"a:b": 2}]}},
            "firstMatch/0/a:b: also given in alwaysMatch",
        ),
        ({"capabilities": {"alwaysMatch": {"tf:labels": ["x"]}}}, "tf:labels: must be an object"),
        ({"capabilities": {"alwaysMatch": {"tf:priority": "high"}}}, "tf:priority"),
        ({"capabilities": {"alwaysMatch": {"tf:colour": 1}}}, "tf:colour: unknown"),
    ],
)
async def test_malformed_capabilities_are_an_invalid_argument(
    tmp_path: Path, body: Any, where: str
) -> None:
    async with running_hub(tmp_path) as hub:
        if isinstance(body, str):
            answer = await hub.api.post("/session", content=body)
        else:
            answer = await new_session(hub.api, body)
    assert answer.status_code == 400
    assert answer.json()["value"]["error"] == "invalid argument"
    assert where in answer.json()["value"]["message"]


async def test_a_request_no_device_could_match_fails_at_once_naming_what_exists(
    tmp_path: Path,
) -> None:
    async with farm(tmp_path) as (hub, _):
        answer = await new_session(
            hub.api, {"capabilities": {"alwaysMatch": {"browserName": "firefox"}}}
        )
    assert answer.status_code == 500
    value = answer.json()["value"]
    assert value["error"] == "session not created"
    assert "no device could ever match" in value["message"]
    assert "browserName: 'chrome'" in value["message"]


async def test_an_unknown_session_is_an_invalid_session_id(tmp_path: Path) -> None:
    async with running_hub(tmp_path) as hub:
        answer = await hub.api.get("/session/nope/title")
        unknown = await hub.api.get("/wd/hub/frobnicate")
    assert answer.status_code == 404
    assert answer.json()["value"]["error"] == "invalid session id"
    assert unknown.status_code == 404
    assert unknown.json()["value"]["error"] == "unknown command"


async def test_the_node_refusing_a_session_is_passed_through_and_frees_the_device(
    tmp_path: Path,
) -> None:
    async with farm(tmp_path) as (hub, node):
        node.refuse_sessions = True
        answer = await new_session(hub.api)
        states = await device_states(hub)
    assert answer.status_code == 500
    assert answer.json()["value"]["message"] == "fake: no more sessions"
    assert states == {"a1:chrome-0": "free"}


async def test_two_clients_racing_for_the_last_device_one_wins_the_other_queues(
    tmp_path: Path,
) -> None:
    async with farm(tmp_path) as (hub, _):
        first, second = (
            asyncio.ensure_future(new_session(hub.api)),
            asyncio.ensure_future(new_session(hub.api)),
        )
        done, pending = await asyncio.wait(
            {first, second}, timeout=5, return_when="FIRST_COMPLETED"
        )
        assert len(done) == 1 and len(pending) == 1
        winner = done.pop().result()
        await asyncio.sleep(0.3)
        still_queued = not pending.copy().pop().done()
        await hub.api.delete(f"/session/{winner.json()['value']['sessionId']}")
        loser = await asyncio.wait_for(pending.pop(), 5)

    assert winner.status_code == 200
    assert still_queued
    assert loser.status_code == 200
    assert loser.json()["value"]["sessionId"] != winner.json()["value"]["sessionId"]


async def test_higher_priority_is_served_first_then_arrival_order(tmp_path: Path) -> None:
    def asking(priority: int) -> dict[str, Any]:
        return {"capabilities": {"alwaysMatch": {"browserName": "chrome", "tf:priority": priority}}}

    async with farm(tmp_path) as (hub, _):
        holder = (await new_session(hub.api)).json()["value"]["sessionId"]
        served: list[str] = []

        async def client(name: str, priority: int) -> None:
            answer = await new_session(hub.api, asking(priority))
            served.append(name)
            await hub.api.delete(f"/session/{answer.json()['value']['sessionId']}")

        clients = []
        for name, priority in (("low", 0), ("low2", 0), ("high", 5)):
            clients.append(asyncio.ensure_future(client(name, priority)))
            await eventually(lambda: hub.hub.allocator.waiting == len(clients), "queued")
        await hub.api.delete(f"/session/{holder}")
        await asyncio.wait_for(asyncio.gather(*clients), 10)
    assert served == ["high", "low", "low2"]


async def test_a_waiting_request_times_out_with_session_not_created(tmp_path: Path) -> None:
    async with farm(tmp_path, session_request_timeout=0.3) as (hub, _):
        holder = await new_session(hub.api)
        waited = await new_session(hub.api)
        sessions = (await hub.api.get("/api/v1/sessions?state=all")).json()["sessions"]
    assert holder.status_code == 200
    assert waited.status_code == 500
    assert waited.json()["value"]["error"] == "session not created"
    assert "within 0.3 s" in waited.json()["value"]["message"]
    assert hub.hub.allocator.waiting == 0
    assert [s["state"] for s in sessions] == ["failed", "active"]


async def test_a_client_that_goes_away_leaves_the_queue(tmp_path: Path) -> None:
    async with farm(tmp_path) as (hub, _):
        await new_session(hub.api)
        waiting = asyncio.ensure_future(new_session(hub.api))
        await eventually(lambda: hub.hub.allocator.waiting == 1, "the request to queue")
        waiting.cancel()  # the ASGI transport tells the app the client disconnected
        await asyncio.gather(waiting, return_exceptions=True)
        await eventually(lambda: hub.hub.allocator.waiting == 0, "the request to leave")
        sessions = await eventually(
            lambda: _states(hub, "failed"), "the abandoned request to be failed"
        )
    assert "went away" in sessions[0]["end_reason"]


async def _states(hub: RunningHub, state: str) -> list[dict[str, Any]]:
    sessions = (await hub.api.get(f"/api/v1/sessions?state={state}")).json()["sessions"]
    return list(sessions)


async def test_status_is_in_grids_shape(tmp_path: Path) -> None:
    async with farm(tmp_path, devices=2) as (hub, _):
        await new_session(hub.api)
        status = (await hub.api.get("/status")).json()["value"]
        hub_status = (await hub.api.get("/wd/hub/status")).json()["value"]
    assert status["ready"] is True
    assert "1 of 2 online WebDriver device(s) free" in status["message"]
    assert hub_status["ready"] is True
    (node,) = status["nodes"]
    assert node["availability"] == "UP" and len(node["slots"]) == 2
    assert sum(1 for slot in node["slots"] if slot["session"]) == 1


async def test_with_auth_the_gateway_wants_an_operator_token(tmp_path: Path) -> None:
    import base64

    from testfleet.protocol.wire import utcnow
    from testfleet.store import tokens

    async with farm(tmp_path, auth=True) as (hub, _):
        store = hub.hub.store
        _, operator = await store.write(tokens.create_token, "ops", "operator", utcnow())
        _, viewer = await store.write(tokens.create_token, "eyes", "viewer", utcnow())
        anonymous = await new_session(hub.api)
        as_viewer = await hub.api.post(
            "/session", json=ASK_CHROME, headers={"Authorization": f"Bearer {viewer}"}
        )
        basic = base64.b64encode(f"ops:{operator}".encode()).decode()
        as_operator = await hub.api.post(
            "/session", json=ASK_CHROME, headers={"Authorization": f"Basic {basic}"}
        )
        status = await hub.api.get("/status")
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Basic")
    assert as_viewer.status_code == 401 and "may not drive" in as_viewer.json()["value"]["message"]
    assert as_operator.status_code == 200, as_operator.text
    assert status.status_code == 200  # /status is open, like Grid's


async def test_large_bodies_are_streamed_both_ways(tmp_path: Path) -> None:
    async with farm(tmp_path) as (hub, _):
        session_id = (await new_session(hub.api)).json()["value"]["sessionId"]
        big = await hub.api.get(f"/session/{session_id}/big?size=3000000")
        upload = b'{"file": "' + b"A" * 2_000_000 + b'"}'
        echoed = await hub.api.post(
            f"/session/{session_id}/echo",
            content=upload,
            headers={"content-type": "application/json"},
        )
    assert big.status_code == 200 and len(big.json()["value"]) == 3_000_000
    assert echoed.status_code == 200 and echoed.content == upload


async def test_a_node_gone_mid_session_is_named_and_dot_segments_are_refused(
    tmp_path: Path,
) -> None:
    async with running_hub(tmp_path) as hub:
        async with fake_node() as node:
            await hub.agent("a1", slots=0, devices=[browser(node)])
            session_id = (await new_session(hub.api)).json()["value"]["sessionId"]
            sneaky = await hub.api.get(f"/session/{session_id}/%2E%2E/other/title")
        gone = await hub.api.get(f"/session/{session_id}/title")
    assert sneaky.status_code == 400
    assert sneaky.json()["value"]["error"] == "invalid argument"
    assert gone.status_code == 500
    value = gone.json()["value"]
    assert value["error"] == "unknown error"
    assert node.url in value["message"]
