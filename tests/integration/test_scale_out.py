"""Two hubs on one PostgreSQL: jobs run by one hub reach agents connected to the other.

Hub A runs every job; hub B (`--max-running-jobs 0`) only serves the API and its agents.
Whatever crosses between them goes through LISTEN/NOTIFY (see hub/relay.py), each
notification on the channel of the hub that must act: a hub reads none meant for the other.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.jobs import cmd_job, echo_job, start, tasks_of, wait_state, wait_task_running
from tests.support.postgres import fresh_database
from tests.support.processes import Agent, Hub
from tests.support.proxy import CuttableProxy

pytestmark = pytest.mark.integration
AGENT_TIMEOUT = 3.0


@dataclass
class TwoHubs:
    """Hub `a` runs the jobs, hub `b` runs none."""

    a: Hub
    b: Hub


@pytest.fixture
def hubs(tmp_path: Path) -> Iterator[TwoHubs]:
    """Two hubs sharing a fresh PostgreSQL database."""
    with fresh_database() as url:
        common = ["--agent-timeout", str(AGENT_TIMEOUT)]
        a = Hub(tmp_path, db_url=url, extra=common).start()
        b = Hub(tmp_path, db_url=url, extra=[*common, "--max-running-jobs", "0"])
        try:
            b.start()
            yield TwoHubs(a, b)
        finally:
            b.stop()
            a.stop()


def metric(client: httpx.Client, name: str) -> float:
    """The sum of a counter's samples on one hub."""
    text = client.get("/metrics").text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name) and not line.startswith("#")
    )


def notifications(client: httpx.Client, **labels: str) -> float:
    """Notifications one hub counted with these labels (direction, kind, channel)."""
    wanted = {f'{key}="{value}"' for key, value in labels.items()}
    total = 0.0
    for line in client.get("/metrics").text.splitlines():
        name, _, rest = line.partition("{")
        if name == "testfleet_hub_notifications_total":
            found, _, value = rest.rpartition("} ")
            if wanted <= set(found.split(",")):
                total += float(value)
    return total


def received(client: httpx.Client, kind: str, channel: str | None = None) -> float:
    """Notifications of `kind` one hub received (on `channel`: hub, broadcast; None: any)."""
    on = {"channel": channel} if channel is not None else {}
    return notifications(client, direction="received", kind=kind, **on)


@pytest.mark.parametrize("through", ["a", "b"])
def test_a_job_reaches_an_agent_connected_to_the_other_hub(
    tmp_path: Path, hubs: TwoHubs, through: str
) -> None:
    agent = Agent(tmp_path, hubs.b.url, "on-b", slots=1).start()
    try:
        with (
            httpx.Client(base_url=hubs.a.url, timeout=30) as a,
            httpx.Client(base_url=hubs.b.url, timeout=30) as b,
        ):
            agent.wait_online(b)
            job_id = start(a if through == "a" else b, echo_job("across", text="over there"))
            status = wait_state(a, job_id, timeout=20)
            assert status["state"] == "completed", status
            events = a.get(f"/api/v1/jobs/{job_id}/events").json()["events"]
            started = next(e for e in events if e["kind"] == "job_started")
            assert started["data"]["server_id"] == f"hub-{hubs.a.port}"  # A ran it
            assert a.get(f"/api/v1/jobs/{job_id}/logs").text == "over there\n"
            assert b.get(f"/api/v1/jobs/{job_id}").json()["state"] == "completed"
            assert notifications(a, direction="sent", kind="task", channel="hub") >= 1
            # B is woken on its own channel; A, which sent the task, does not hear it back
            assert received(b, "task", "hub") >= 1
            assert received(a, "task") == 0
            # B's news of the job goes to A, which runs it, not back to B
            assert received(a, "job", "hub") >= 1
            assert received(b, "job") == 0
            assert metric(b, "testfleet_hub_notifications_unneeded_total") == 0
    finally:
        agent.stop()


def test_a_stop_asked_of_one_hub_stops_the_task_on_an_agent_of_the_other(
    tmp_path: Path, hubs: TwoHubs
) -> None:
    agent = Agent(tmp_path, hubs.b.url, "on-b", slots=1).start()
    try:
        with httpx.Client(base_url=hubs.b.url, timeout=30) as b:
            agent.wait_online(b)
            job_id = start(b, cmd_job("long", "import time; time.sleep(60)"))
            wait_task_running(b, job_id)
            assert b.post(f"/api/v1/jobs/{job_id}/stop").status_code == 202
            status = wait_state(b, job_id, timeout=20)
            assert status["state"] == "cancelled", status
            (task,) = tasks_of(status)
            assert task["state"] == "cancelled", task
            assert "not stopped by its agent" not in (task["error"] or "")  # the agent did
            with httpx.Client(base_url=hubs.a.url, timeout=30) as a:
                # the stop went from B to A (which runs the job), then A's to B (the agent's)
                assert received(a, "job_stop", "hub") >= 1
                assert received(b, "task_stop", "hub") >= 1
                assert received(a, "task_stop") == received(b, "job_stop") == 0
    finally:
        agent.stop()


def test_an_agent_that_moves_to_the_other_hub_mid_job_is_not_lost(
    tmp_path: Path, hubs: TwoHubs
) -> None:
    lines = 30
    code = f"import time\nfor i in range({lines}):\n    print(i, flush=True); time.sleep(0.2)"
    with CuttableProxy(hubs.a.port) as proxy:
        agent = Agent(tmp_path, f"http://127.0.0.1:{proxy.port}", "mover", slots=1).start()
        try:
            with httpx.Client(base_url=hubs.a.url, timeout=30) as a:
                agent.wait_online(a)
                job_id = start(a, cmd_job("moving", code))
                wait_task_running(a, job_id)
                proxy.target_port = hubs.b.port
                proxy.cut()  # the agent reconnects, now to hub B
                cut_at = time.monotonic()
                status = wait_state(a, job_id, timeout=30)
                assert status["state"] == "completed", status
                (task,) = tasks_of(status)
                assert task["state"] == "passed", task
                logs = a.get(f"/api/v1/jobs/{job_id}/logs").text
                assert logs == "".join(f"{i}\n" for i in range(lines))
                # Past the time hub A would have declared its lost connection's agent lost:
                time.sleep(max(0.0, cut_at + 2 * AGENT_TIMEOUT + 1 - time.monotonic()))
                agents = {x["name"]: x for x in a.get("/api/v1/agents").json()["agents"]}
                assert agents["mover"]["state"] == "online"
                assert agents["mover"]["hub"] == f"hub-{hubs.b.port}"
        finally:
            agent.stop()
