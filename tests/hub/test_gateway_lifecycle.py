"""Gateway sessions over time: idle ones ended on the node before their device is freed, lost
agents, kills through the API, a hub restart, the command history and final screenshot."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from testfleet.protocol.wire import DeviceAdded, DeviceRemoved
from tests.hub.test_gateway import ASK_CHROME, browser, device_states, farm, new_session
from tests.support.inproc import eventually, running_hub
from tests.support.w3c_node import PNG, fake_node

pytestmark = pytest.mark.anyio


def asking(**caps: Any) -> dict[str, Any]:
    return {"capabilities": {"alwaysMatch": {"browserName": "chrome", **caps}}}


async def test_an_idle_session_is_ended_on_the_node_then_its_device_freed(tmp_path: Path) -> None:
    async with farm(tmp_path) as (hub, node):
        created = await new_session(hub.api, asking(**{"tf:newCommandTimeout": 1}))
        session_id = created.json()["value"]["sessionId"]
        await hub.api.get(f"/session/{session_id}/title")
        await eventually(lambda: node.deleted == [session_id], "the node to delete the session")
        states = await eventually(
            lambda: _when(device_states(hub), lambda s: s["a1:chrome-0"] == "free"), "freed"
        )
        after = await hub.api.get(f"/session/{session_id}/title")
        info = (await hub.api.get(f"/api/v1/sessions/{session_id}")).json()
        shot = await hub.api.get(f"/api/v1/sessions/{info['id']}/screenshot")
        commands = (await hub.api.get(f"/api/v1/sessions/{info['id']}/commands")).json()
    assert states == {"a1:chrome-0": "free"}
    assert after.json()["value"]["error"] == "invalid session id"
    assert info["state"] == "ended"
    assert "idle for more than 1 s" in info["end_reason"]
    assert info["commands"] == 1
    assert shot.status_code == 200 and shot.content == PNG
    assert [c["command"] for c in commands["commands"]] == ["GET /title"]
    assert commands["commands"][0]["status"] == 200


async def test_a_command_under_way_keeps_its_session_from_going_idle(tmp_path: Path) -> None:
    async with farm(tmp_path) as (hub, node):
        created = await new_session(hub.api, asking(**{"tf:newCommandTimeout": 1}))
        session_id = created.json()["value"]["sessionId"]
        slow = await hub.api.get(f"/session/{session_id}/slow?seconds=2.5", timeout=10)
        title = await hub.api.get(f"/session/{session_id}/title")
    assert slow.json() == {"value": "done"}
    assert title.json() == {"value": "Fake page"}
    assert node.deleted == [] or node.deleted == [session_id]  # ended only after idling


async def _when(value: Any, test: Any) -> Any:
    got = await value
    return got if test(got) else None


async def test_killing_a_session_ends_it_on_the_node_and_frees_the_device(tmp_path: Path) -> None:
    async with farm(tmp_path) as (hub, node):
        session_id = (await new_session(hub.api)).json()["value"]["sessionId"]
        killed = await hub.api.delete(f"/api/v1/sessions/{session_id}")
        again = await hub.api.delete(f"/api/v1/sessions/{session_id}")
        unknown = await hub.api.delete("/api/v1/sessions/12345")
        states = await device_states(hub)
        after = await hub.api.get(f"/session/{session_id}/title")
    assert killed.status_code == 200, killed.text
    assert killed.json()["state"] == "ended"
    assert killed.json()["end_reason"] == "killed by anonymous"
    assert node.deleted == [session_id]
    assert again.status_code == 409
    assert unknown.status_code == 404
    assert states == {"a1:chrome-0": "free"}
    assert "killed by anonymous" in after.json()["value"]["message"]


async def test_a_lost_agents_sessions_answer_invalid_session_id_and_free_when_it_is_back(
    tmp_path: Path,
) -> None:
    async with fake_node() as node, running_hub(tmp_path) as hub:
        agent = await hub.agent("a1", slots=0, devices=[browser(node)])
        session_id = (await new_session(hub.api)).json()["value"]["sessionId"]
        await agent.disconnect()
        answer = await eventually(
            lambda: _when(
                hub.api.get(f"/session/{session_id}/title"), lambda r: r.status_code == 404
            ),
            "the session to be lost",
        )
        offline = await device_states(hub)
        await agent.connect()
        freed = await eventually(
            lambda: _when(device_states(hub), lambda s: s["a1:chrome-0"] == "free"),
            "the device to be freed once its agent is back",
        )
        info = (await hub.api.get(f"/api/v1/sessions/{session_id}")).json()
    assert answer.json()["value"]["error"] == "invalid session id"
    assert offline == {"a1:chrome-0": "offline"}
    assert freed == {"a1:chrome-0": "free"}
    assert node.deleted == [session_id]  # ended on the node before the device was freed
    assert info["state"] == "ended" and "agent" in info["end_reason"]


async def test_a_session_goes_on_after_the_hub_restarts(tmp_path: Path) -> None:
    async with fake_node() as node:
        async with running_hub(tmp_path) as hub:
            await hub.agent("a1", slots=0, devices=[browser(node)])
            session_id = (await new_session(hub.api)).json()["value"]["sessionId"]
        async with running_hub(tmp_path) as again:
            title = await again.api.get(f"/session/{session_id}/title")
            deleted = await again.api.delete(f"/session/{session_id}")
    assert title.json() == {"value": "Fake page"}
    assert deleted.status_code == 200 and node.deleted == [session_id]


async def test_devices_come_and_go_with_the_agents_events(tmp_path: Path) -> None:
    async with fake_node() as node, running_hub(tmp_path) as hub:
        agent = await hub.agent("a1", slots=1)
        agent.event(DeviceAdded(seq=1, device=browser(node, "late")))
        await agent.acked()
        added = await device_states(hub)
        chrome = (await hub.api.get("/api/v1/devices?capability=browserName=chrome")).json()
        agent.event(DeviceRemoved(seq=1, name="late"))
        await agent.acked()
        removed = await device_states(hub)
        bad = await hub.api.get("/api/v1/devices?capability=nonsense")
    assert added == {"a1:late": "free", "a1:slot-0": "free"}
    assert [d["device_id"] for d in chrome["devices"]] == ["a1:late"]
    assert chrome["devices"][0]["url"] == node.url
    assert removed == {"a1:slot-0": "free"}
    assert bad.status_code == 422 and "query.capability" in bad.json()["message"]


async def test_placement_capabilities_choose_the_device(tmp_path: Path) -> None:
    async with fake_node() as node, running_hub(tmp_path) as hub:
        await hub.agent("a1", slots=0, devices=[browser(node, "x")], labels={"pool": "a"})
        await hub.agent("a2", slots=0, devices=[browser(node, "y")], labels={"pool": "b"})
        by_label = await new_session(hub.api, asking(**{"tf:labels": {"pool": "b"}}))
        by_agent = await new_session(hub.api, asking(**{"tf:agent": "a1"}))
        nothing = await new_session(hub.api, asking(**{"tf:udids": ["nope"]}))
    assert by_label.json()["value"]["capabilities"]["tf:device"] == "a2:y"
    assert by_agent.json()["value"]["capabilities"]["tf:device"] == "a1:x"
    assert nothing.json()["value"]["error"] == "session not created"


async def test_many_sessions_in_parallel_each_get_their_own_device(tmp_path: Path) -> None:
    async with farm(tmp_path, devices=4) as (hub, node):
        answers = await asyncio.gather(*(new_session(hub.api, ASK_CHROME) for _ in range(4)))
        devices = {a.json()["value"]["capabilities"]["tf:device"] for a in answers}
        await asyncio.gather(
            *(hub.api.delete(f"/session/{a.json()['value']['sessionId']}") for a in answers)
        )
        states = await device_states(hub)
    assert len(devices) == 4
    assert set(states.values()) == {"free"}
    assert len(node.deleted) == 4


async def test_least_used_picks_the_device_used_longest_ago(tmp_path: Path) -> None:
    async def device_of(hub: Any, body: dict[str, Any]) -> str:
        value = (await new_session(hub.api, body)).json()["value"]
        await hub.api.delete(f"/session/{value['sessionId']}")
        return str(value["capabilities"]["tf:device"])

    async with farm(tmp_path, devices=2) as (hub, _):
        first = await device_of(hub, ASK_CHROME)
        again = await device_of(hub, ASK_CHROME)
        least = await device_of(hub, asking(**{"tf:leastUsed": True}))
        then = await device_of(hub, asking(**{"tf:leastUsed": True}))
    assert first == again == "a1:chrome-0"  # by id without it
    assert least == "a1:chrome-1"  # never used
    assert then == "a1:chrome-0"  # now used longest ago


async def test_history_past_its_keeping_time_is_forgotten(tmp_path: Path) -> None:
    async with farm(tmp_path, session_history_days=0.5 / 86400) as (hub, _):
        old = (await new_session(hub.api)).json()["value"]["sessionId"]
        await hub.api.get(f"/session/{old}/title")
        await hub.api.delete(f"/session/{old}")
        live = (await new_session(hub.api)).json()["value"]["sessionId"]
        await asyncio.sleep(0.6)
        pruned = await hub.hub.gateway.keeper.prune(force=True)
        forgotten = await hub.api.get(f"/api/v1/sessions/{old}")
        kept = await hub.api.get(f"/api/v1/sessions/{live}")
    assert pruned == 1
    assert forgotten.status_code == 404
    assert kept.status_code == 200 and kept.json()["state"] == "active"
