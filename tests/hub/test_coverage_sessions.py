"""Coverage sessions over the hub (seed 000, steps 1-12 and the cancel exception), with a
probe that speaks the real protocol: actions, answers, parts, refusals, reconnects."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from testfleet.protocol.coverage import (
    CancelAgentSession,
    CoverDataPart,
    ExecClassData,
    ProbeError,
    SessionChanged,
    StartAgentSession,
)
from testfleet.store import coverage as coverage_store
from tests.support.fake_probe import FakeProbe, module
from tests.support.inproc import RunningHub, eventually, running_hub

pytestmark = pytest.mark.anyio

SHOP = [
    module("shop/cart.py", 10, {"Cart.add": (2, 3, "a1"), "Cart.total": (5, 5, "t1")}),
    module("shop/pricing.py", 4, {"tax": (1, 3, "x1")}),
]


async def probe(
    hub: RunningHub,
    agent_id: str = "shop-1",
    build: str = "1.0",
    classes: list[Any] | None = None,
    **fields: Any,
) -> FakeProbe:
    fake = FakeProbe(hub.hub, agent_id, "shop", build, classes or SHOP, **fields)
    await fake.connect()
    return fake


async def action(
    hub: RunningHub, body: dict[str, Any], *, agent: str | None = None, app: str = "shop"
) -> httpx.Response:
    path = f"agents/{agent}" if agent else f"apps/{app}"
    return await hub.api.post(f"/api/v1/coverage/{path}/dispatch-action", json=body)


async def asgi_stream(hub: RunningHub, path: str) -> AsyncIterator[str]:
    """A streamed response's body chunks as the app sends them (httpx's ASGI transport
    would wait for the whole body)."""
    transport = hub.api._transport
    assert isinstance(transport, httpx.ASGITransport)
    chunks: asyncio.Queue[str | None] = asyncio.Queue()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(b"host", b"hub")],
        "server": ("hub", 80),
        "client": ("127.0.0.1", 1),
        "root_path": "",
    }
    done = asyncio.Event()

    async def receive() -> dict[str, Any]:
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            chunks.put_nowait(message.get("body", b"").decode())
            if not message.get("more_body"):
                chunks.put_nowait(None)

    task = asyncio.create_task(transport.app(scope, receive, send))  # type: ignore[arg-type]
    try:
        while (chunk := await chunks.get()) is not None:
            yield chunk
    finally:
        done.set()
        await task


def start(session_id: str | None = None, **payload: Any) -> dict[str, Any]:
    if session_id:
        payload["sessionId"] = session_id
    return {"type": "START", "payload": {"testType": "AUTO", **payload}}


def stop(session_id: str) -> dict[str, Any]:
    return {"type": "STOP", "payload": {"sessionId": session_id}}


async def test_the_seed_flow_start_parts_stop_gives_the_session_its_coverage(
    tmp_path: Path,
) -> None:
    async with running_hub(tmp_path) as hub:
        fake = await probe(hub)
        fake.answer()
        started = await action(hub, start(), agent="shop-1")
        assert started.status_code == 200, started.text
        session_id = started.json()["sessions"][0]["sessionId"]  # generated
        fake.part(session_id, {"shop/cart.py": [0, 2, 3], "shop/pricing.py": [1]})
        fake.part(session_id, {"shop/cart.py": [2, 5]})  # overlaps: counted once
        await fake.acked()
        stopped = await action(hub, stop(session_id), agent="shop-1")
        report = (await hub.api.get(f"/api/v1/coverage/sessions/{session_id}/report")).json()
        metrics = (await hub.api.get("/metrics")).text

    info = stopped.json()["sessions"][0]
    assert (info["state"], info["totals"]["covered"], info["totals"]["total"]) == (
        "finished",
        5,
        14,
    )
    cart = report["files"]["shop/cart.py"]
    assert cart["covered_lines"] == [1, 3, 4, 6]
    assert cart["missing_lines"] == [2, 5, 7, 8, 9, 10]
    assert cart["functions"]["Cart.add"]["covered"] == 2
    assert cart["functions"]["Cart.total"]["covered"] == 1
    assert report["totals"] == {"covered": 5, "total": 14, "percent": 35.71}
    assert "testfleet_coverage_parts_total 2.0" in metrics
    assert "testfleet_coverage_probes_connected 1.0" in metrics
    assert "testfleet_coverage_part_seconds_count 2.0" in metrics


async def test_stop_of_an_unknown_session_is_404_session_not_found(tmp_path: Path) -> None:
    async with running_hub(tmp_path) as hub:
        await probe(hub)
        by_agent = await action(hub, stop("nope"), agent="shop-1")
        by_app = await action(hub, stop("nope"))
        unknown_agent = await action(hub, start(), agent="ghost")

    assert by_agent.status_code == 404 and by_app.status_code == 404
    assert by_agent.json()["code"] == "session_not_found"
    assert "session not found" in by_agent.json()["message"]
    assert unknown_agent.status_code == 404 and "ghost" in unknown_agent.json()["message"]


async def test_a_second_global_session_is_refused_with_409(tmp_path: Path) -> None:
    async with running_hub(tmp_path) as hub:
        (await probe(hub)).answer()
        first = await action(hub, start("g1", isGlobal=True))
        second = await action(hub, start("g2", isGlobal=True))
        same_id = await action(hub, start("g1"))
        await action(hub, stop("g1"))
        after_stop = await action(hub, start("g3", isGlobal=True))

    assert first.status_code == 200
    assert second.status_code == 409 and second.json()["code"] == "global_session_active"
    assert same_id.status_code == 409 and same_id.json()["code"] == "session_exists"
    assert after_stop.status_code == 200


async def test_cancel_discards_the_data_and_the_probe_is_told(tmp_path: Path) -> None:
    async with running_hub(tmp_path) as hub:
        fake = await probe(hub)
        fake.answer()
        await action(hub, start("c1"))
        fake.part("c1", {"shop/cart.py": [1]})
        await fake.acked()
        cancelled = await action(hub, {"type": "CANCEL", "payload": {"sessionId": "c1"}})
        late = fake.part("c1", {"shop/cart.py": [2]})
        refusal = await fake.expect(ProbeError)
        report = await hub.api.get("/api/v1/coverage/sessions/c1/report")
        stop_again = await action(hub, stop("c1"))

    assert cancelled.json()["sessions"][0]["state"] == "cancelled"
    assert cancelled.json()["sessions"][0]["totals"]["covered"] == 0
    assert refusal.code == "session_closed" and refusal.seq == late.seq
    assert report.status_code == 409
    assert stop_again.status_code == 409


async def test_stop_all_and_cancel_all_reach_the_probe_as_such(tmp_path: Path) -> None:
    async with running_hub(tmp_path) as hub:
        fake = await probe(hub)
        fake.answer()
        await action(hub, start("a"), agent="shop-1")
        await action(hub, start("b"), agent="shop-1")
        stopped = await action(hub, {"type": "STOP_ALL"}, agent="shop-1")
        await action(hub, start("c"), agent="shop-1")
        cancelled = await action(hub, {"type": "CANCEL_ALL"})

    assert sorted(s["sessionId"] for s in stopped.json()["sessions"]) == ["a", "b"]
    assert {s["state"] for s in stopped.json()["sessions"]} == {"finished"}
    assert [s["state"] for s in cancelled.json()["sessions"]] == ["cancelled"]
    assert [type(m).__name__ for m in fake.actions] == [
        "StartAgentSession",
        "StartAgentSession",
        "StopAllAgentSessions",
        "StartAgentSession",
        "CancelAllAgentSessions",
    ]


async def test_bad_actions_get_422_with_the_field(tmp_path: Path) -> None:
    async with running_hub(tmp_path) as hub:
        await probe(hub)
        unknown = await action(hub, {"type": "PAUSE"})
        no_payload = await action(hub, {"type": "STOP"})
        bad_field = await action(hub, {"type": "START", "payload": {"isRealtime": "maybe"}})
        not_json = await hub.api.post(
            "/api/v1/coverage/apps/shop/dispatch-action",
            content=b"{",
            headers={"content-type": "application/json"},
        )

    for response in (unknown, no_payload, bad_field, not_json):
        assert response.status_code == 422, response.text
    assert bad_field.json()["errors"][0]["location"] == "/payload/isRealtime"
    assert no_payload.json()["errors"][0]["location"] == "/payload"


async def test_malformed_and_mismatched_parts_are_refused_and_the_probe_keeps_working(
    tmp_path: Path,
) -> None:
    async with running_hub(tmp_path) as hub:
        fake = await probe(hub)
        fake.answer()
        await action(hub, start("m1"))
        cart = fake.by_name("shop/cart.py")
        fake.send_raw('{"type": "COVERAGE_DATA_PART", "sessionId": "m1", "seq": 90, "data": [1]}')
        malformed = await fake.expect(ProbeError)
        wrong_length = ExecClassData(id=cart.id, className=cart.name, probes=[True])
        fake.send(CoverDataPart(sessionId="m1", data=[wrong_length], seq=91))
        mismatch = await fake.expect(ProbeError)
        unknown = ExecClassData(id=1, className="nope.py", probes=[True])
        fake.send(
            CoverDataPart(
                sessionId="m1",
                data=[wrong_length.model_copy(update={"probes": [True] * 10}), unknown],
                seq=92,
            )
        )
        unknown_class = await fake.expect(ProbeError)
        too_many = {
            "type": "COVERAGE_DATA_PART",
            "sessionId": "m1",
            "seq": 93,
            "data": [wrong_length.model_dump()] * 65_536,
        }
        fake.send_raw(json.dumps(too_many))
        oversized = await fake.expect(ProbeError)
        fake.send_raw("not json")
        garbage = await fake.expect(ProbeError)
        fake.seq = 100
        fake.part("m1", {"shop/cart.py": [0]})
        await fake.acked()
        stopped = await action(hub, stop("m1"))

    assert (malformed.code, malformed.location, malformed.seq) == (
        "malformed_message",
        "/data/0",
        90,
    )
    assert (mismatch.code, mismatch.location) == ("probe_count_mismatch", "/data/0/probes")
    assert (unknown_class.code, unknown_class.location) == ("unknown_class", "/data/1/className")
    assert (oversized.location, oversized.seq) == ("/data", 93)
    assert garbage.code == "malformed_message"
    assert stopped.json()["sessions"][0]["totals"]["covered"] == 1


async def test_a_reconnecting_probe_resends_and_the_totals_are_exact(tmp_path: Path) -> None:
    async with running_hub(tmp_path) as hub:
        fake = await probe(hub)
        fake.answer()
        await action(hub, start("r1"))
        fake.part("r1", {"shop/cart.py": [0, 1]})
        await fake.acked()
        unacked = fake.part("r1", {"shop/cart.py": [0, 1, 2]})
        await fake.disconnect()  # the ACK of `unacked` may never have reached the probe
        await fake.connect(held=["r1"])
        fake.answer()
        fake.send(unacked)  # sent again after the reconnect: merged, not counted twice
        fake.part("r1", {"shop/pricing.py": [3]})
        await fake.acked()
        stopped = await action(hub, stop("r1"))

    assert stopped.json()["sessions"][0]["totals"]["covered"] == 4


async def test_reconnect_reconciles_sessions_the_probe_misses_or_still_holds(
    tmp_path: Path,
) -> None:
    async with running_hub(tmp_path) as hub:
        fake = await probe(hub)
        fake.answer()
        await action(hub, start("keep"))
        await fake.disconnect()
        await fake.connect(held=["gone"])  # a restarted probe: lost "keep", holds "gone"

        restarted = await fake.expect(StartAgentSession)
        cancelled = await fake.expect(CancelAgentSession)

    assert restarted.payload.sessionId == "keep"
    assert cancelled.payload.sessionId == "gone"


async def test_a_new_probe_of_the_app_joins_its_open_app_sessions(tmp_path: Path) -> None:
    async with running_hub(tmp_path) as hub:
        first = await probe(hub, "shop-1")
        first.answer()
        await action(hub, start("wide"))
        second = await probe(hub, "shop-2")
        joined = await second.expect(StartAgentSession)
        second.answer()
        second.part("wide", {"shop/pricing.py": [0]})
        await second.acked()
        info = (await hub.api.get("/api/v1/coverage/sessions/wide")).json()
        probes = (await hub.api.get("/api/v1/coverage/agents")).json()["agents"]

    assert joined.payload.sessionId == "wide"
    assert info["agents"] == ["shop-1", "shop-2"]
    assert {p["agent_id"]: p["active_sessions"] for p in probes} == {
        "shop-1": ["wide"],
        "shop-2": ["wide"],
    }


async def test_a_build_announced_again_with_other_code_is_refused(tmp_path: Path) -> None:
    async with running_hub(tmp_path) as hub:
        await probe(hub)
        other = FakeProbe(hub.hub, "shop-9", "shop", "1.0", SHOP, checksum="different")
        with pytest.raises(AssertionError, match="build_mismatch"):
            await other.connect()


async def test_realtime_sessions_push_coverage_live_as_parts_arrive(tmp_path: Path) -> None:
    async with running_hub(tmp_path) as hub:
        fake = await probe(hub)
        fake.answer()
        await action(hub, start("rt", isRealtime=True))
        seen: list[dict[str, Any]] = []

        async def follow() -> None:
            async for chunk in asgi_stream(hub, "/api/v1/coverage/sessions/rt/live"):
                for line in chunk.splitlines():
                    if line.startswith("data: ") and "totals" in line:
                        seen.append(json.loads(line[6:]))

        follower = asyncio.create_task(follow())
        await eventually(lambda: seen, "the first live update")
        fake.part("rt", {"shop/cart.py": [0]})
        await eventually(lambda: seen[-1]["totals"]["covered"] == 1, "one probe covered")
        fake.part("rt", {"shop/cart.py": [0, 1, 2]})
        fake.numbered(SessionChanged(sessionId="rt", probeCount=3))
        await eventually(lambda: seen[-1].get("probeCount") == 3, "the probe's count")
        await action(hub, stop("rt"))
        await asyncio.wait_for(follower, 10)

    assert [s["totals"]["covered"] for s in seen][:2] == [0, 1]
    assert seen[-1]["state"] == "finished" and seen[-1]["totals"]["covered"] == 3


async def test_coverage_is_split_by_test_and_filtered_by_test(tmp_path: Path) -> None:
    async with running_hub(tmp_path) as hub:
        fake = await probe(hub)
        fake.answer()
        await action(hub, start("pt", testName="default-test"))
        fake.part("pt", {"shop/cart.py": [0, 1]}, test="test_add")
        fake.part("pt", {"shop/cart.py": [1, 5], "shop/pricing.py": [0]}, test="test_total")
        await fake.acked()
        open_report = (await hub.api.get("/api/v1/coverage/sessions/pt/report")).json()
        await action(hub, stop("pt"))
        report = (await hub.api.get("/api/v1/coverage/sessions/pt/report")).json()
        only = (await hub.api.get("/api/v1/coverage/sessions/pt/report?test=test_add")).json()
        source = (
            await hub.api.get(
                "/api/v1/coverage/builds/shop/1.0/source", params={"path": "shop/cart.py"}
            )
        ).json()

    assert open_report["tests"] == report["tests"]
    assert report["tests"]["test_add"]["files"] == {"shop/cart.py": [1, 2]}
    assert report["tests"]["test_total"]["files"] == {
        "shop/cart.py": [2, 6],
        "shop/pricing.py": [1],
    }
    assert only["totals"]["covered"] == 2 and list(only["tests"]) == ["test_add"]
    states = {line["number"]: line["state"] for line in source["lines"]}
    assert [states[n] for n in (1, 2, 3, 6)] == ["covered", "covered", "missed", "covered"]
    assert source["tests"] == ["test_add", "test_total"]


async def test_a_probe_on_another_hub_is_named_not_silently_missed(tmp_path: Path) -> None:
    async with running_hub(tmp_path) as hub:
        fake = await probe(hub)
        await fake.disconnect()
        build = await hub.hub.store.read(coverage_store.get_build, "shop", "1.0")
        assert build is not None
        await hub.hub.store.write(
            coverage_store.connect_probe,
            agent_id="shop-far",
            app="shop",
            build_id=build.id,
            instance_id="i",
            hub="hub-b:8470",
            now=datetime.now(UTC),
        )
        by_app = await action(hub, start())
        by_agent = await action(hub, start(), agent="shop-far")

    for response in (by_app, by_agent):
        assert response.status_code == 409
        assert response.json()["code"] == "probe_elsewhere"
        assert "hub-b:8470" in response.json()["message"]
