"""Several hubs on one PostgreSQL: a WebDriver session created through one hub is routed,
and ended, through another (the session map is in the store)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.hub.test_gateway import ASK_CHROME, browser, new_session
from tests.support.inproc import eventually, running_hub
from tests.support.w3c_node import fake_node

pytestmark = pytest.mark.anyio


async def test_a_session_made_on_one_hub_is_driven_and_ended_through_another(
    db_url: str, tmp_path: Path
) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("one hub per SQLite store")
    async with (
        fake_node() as node,
        running_hub(tmp_path / "a", db_url=db_url, server_id="hub-a") as a,
        running_hub(tmp_path / "b", db_url=db_url, server_id="hub-b") as b,
    ):
        await a.agent("a1", slots=0, devices=[browser(node)])
        session_id = (await new_session(a.api, ASK_CHROME)).json()["value"]["sessionId"]
        title = await b.api.get(f"/wd/hub/session/{session_id}/title")
        listed = (await b.api.get("/api/v1/sessions")).json()["sessions"]
        deleted = await b.api.delete(f"/session/{session_id}")
        after = await a.api.get(f"/session/{session_id}/title")
        devices = (await b.api.get("/api/v1/devices")).json()["devices"]
        held = (await new_session(a.api, ASK_CHROME)).json()["value"]["sessionId"]
        waiting = asyncio.ensure_future(new_session(b.api, ASK_CHROME))
        await eventually(lambda: b.hub.allocator.waiting == 1, "the request to queue on b")
        await a.api.delete(f"/session/{held}")
        served = await asyncio.wait_for(waiting, 10)
    assert served.status_code == 200, served.text
    assert title.json() == {"value": "Fake page"}
    assert [(s["session_id"], s["hub"]) for s in listed] == [(session_id, "hub-a")]
    assert deleted.status_code == 200 and node.deleted[0] == session_id
    assert after.status_code == 404  # through hub a too: the session is gone
    assert [d["state"] for d in devices] == ["free"]
