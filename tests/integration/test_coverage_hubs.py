"""Two hubs on one PostgreSQL: coverage actions sent to one hub reach a probe connected to the
other, which carries them out; reports read the shared store from either."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.test_coverage_probe import reference, same_as_reference, start_app
from tests.integration.test_scale_out import TwoHubs
from tests.support.postgres import fresh_database
from tests.support.processes import Hub, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def hubs(tmp_path: Path) -> Iterator[TwoHubs]:
    with fresh_database() as url:
        a = Hub(tmp_path, db_url=url).start()
        b = Hub(tmp_path, db_url=url)
        try:
            b.start()
            yield TwoHubs(a, b)
        finally:
            b.stop()
            a.stop()


def test_actions_sent_to_one_hub_reach_a_probe_on_the_other(hubs: TwoHubs, tmp_path: Path) -> None:
    commands = ["run 50 3", "flush"]
    with httpx.Client(base_url=hubs.a.url, timeout=60) as a:
        app = start_app(hubs.b.url, "1.0", tmp_path)  # connected to hub b
        wait_until(lambda: a.get("/api/v1/coverage/agents").json()["agents"], 30, 0.05, "probe")
        path = "/api/v1/coverage/apps/shop/dispatch-action"
        started = a.post(path, json={"type": "START", "payload": {"sessionId": "far"}})
        for command in commands:
            app.do(command)
        stopped = a.post(path, json={"type": "STOP", "payload": {"sessionId": "far"}})
        again = a.post(path, json={"type": "STOP", "payload": {"sessionId": "far"}})
        report = a.get("/api/v1/coverage/sessions/far/report").json()
        app.exit()

    assert started.status_code == 200, started.text
    assert started.json()["sessions"][0]["state"] == "active"
    assert stopped.status_code == 200, stopped.text
    assert stopped.json()["sessions"][0]["state"] == "finished"
    assert again.status_code == 409 and again.json()["code"] == "session_closed"
    lines = {path: data["covered_lines"] for path, data in report["files"].items()}
    same_as_reference(lines, reference(commands, tmp_path))
