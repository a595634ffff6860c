"""Faults of a hub under a fleet (issue 8), at a reduced size: two hubs on one PostgreSQL, one
of them frozen (SIGSTOP) or killed; a fleet reconnecting at once after a hub restart.

The fleets are real agents (`testfleet.agent.Agent`): many in one process
(`tests/support/agent_swarm.py`), or `testfleet agent` processes where they run jobs.
`benchmarks/swarm.py` measures the same at full size.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.jobs import cmd_job, start, tasks_of, wait_state
from tests.support.postgres import fresh_database
from tests.support.processes import Agent, Hub, wait_until
from tests.support.proxy import CuttableProxy

pytestmark = pytest.mark.integration
COUNTING = "import time\nfor i in range({n}):\n    print(i, flush=True); time.sleep({pause})"


def counting_job(name: str, n: int, pause: float) -> dict[str, Any]:
    """A one-step job printing 0..n-1, `pause` seconds apart: its log shows loss or repeats."""
    return cmd_job(name, COUNTING.format(n=n, pause=pause))


def counted(n: int) -> str:
    return "".join(f"{i}\n" for i in range(n))


@dataclass
class Swarm:
    """A process of `count` real agents (one slot each) and the status it writes."""

    process: subprocess.Popen[bytes]
    status_path: Path
    count: int

    def status(self) -> dict[str, int]:
        """Connected agents and failed connection attempts, as the process last wrote them."""
        try:
            loaded: dict[str, int] = json.loads(self.status_path.read_text())
        except (FileNotFoundError, ValueError):
            return {"online": 0, "failures": 0, "handshake_timeouts": 0, "refused": 0}
        return loaded


@contextmanager
def swarm(tmp_path: Path, hub_url: str, count: int, prefix: str) -> Iterator[Swarm]:
    """Run `count` agents against `hub_url` until the block ends."""
    status = tmp_path / f"{prefix}.json"
    with (tmp_path / f"{prefix}.log").open("ab") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.support.agent_swarm",
                "--hub",
                hub_url,
                "--count",
                str(count),
                "--prefix",
                prefix,
                "--status",
                str(status),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        yield Swarm(process, status, count)
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def agent_states(client: httpx.Client, prefix: str) -> dict[str, str]:
    """name -> state of the agents called `prefix-...`, as `client`'s hub lists them."""
    listed = client.get("/api/v1/agents", params={"limit": 5000}).json()["agents"]
    return {a["name"]: a["state"] for a in listed if a["name"].startswith(prefix + "-")}


def all_online(client: httpx.Client, prefix: str, count: int) -> bool:
    states = agent_states(client, prefix)
    return len(states) == count and all(s == "online" for s in states.values())


def counter(client: httpx.Client, name: str) -> float:
    """The sum of a metric's samples on one hub."""
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in client.get("/metrics").text.splitlines()
        if line.startswith(name) and not line.startswith("#")
    )


@contextmanager
def two_hubs(tmp_path: Path, a_extra: list[str], b_extra: list[str]) -> Iterator[tuple[Hub, Hub]]:
    """Hubs A and B on a fresh PostgreSQL database."""
    with fresh_database() as url:
        a = Hub(tmp_path / "a", db_url=url, extra=a_extra)
        b = Hub(tmp_path / "b", db_url=url, extra=b_extra)
        for hub in (a, b):
            hub.workdir.mkdir(parents=True, exist_ok=True)
        a.start()
        try:
            b.start()
            yield a, b
        finally:
            if b.process is not None and b.process.alive():
                os.kill(b.process.pid, signal.SIGCONT)  # in case a test left it frozen
                b.stop()
            a.stop()


@contextmanager
def frozen(hub: Hub) -> Iterator[None]:
    """The hub's process stopped (SIGSTOP) for the block, continued after."""
    assert hub.process is not None
    os.kill(hub.process.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(hub.process.pid, signal.SIGCONT)


FLEET = 20


def test_a_hub_frozen_for_less_than_the_hub_timeout_loses_no_agent_and_no_work(
    tmp_path: Path,
) -> None:
    # B serves the agents, A runs the jobs; B is frozen for most of its --hub-timeout.
    common = ["--agent-timeout", "3", "--hub-timeout", "8"]
    with (
        two_hubs(tmp_path, common, [*common, "--max-running-jobs", "0"]) as (a_hub, b_hub),
        swarm(tmp_path, b_hub.url, FLEET, "frozen") as fleet,
        httpx.Client(base_url=a_hub.url, timeout=30) as a,
    ):
        wait_until(lambda: all_online(a, "frozen", FLEET), 60, what="the fleet online")
        lines = 30
        job_id = start(a, counting_job("across-a-freeze", n=lines, pause=0.25))
        wait_until(
            lambda: a.get(f"/api/v1/jobs/{job_id}/logs").text.count("\n") >= 3,
            30,
            what="the job running on an agent of the frozen hub",
        )
        states_during: list[dict[str, str]] = []
        with frozen(b_hub):
            for _ in range(10):  # 5 s, while A keeps answering
                states_during.append(agent_states(a, "frozen"))
                time.sleep(0.5)
        assert all(s == "online" for states in states_during for s in states.values()), [
            {n: s for n, s in states.items() if s != "online"} for states in states_during
        ]
        status = wait_state(a, job_id, timeout=40)
        assert status["state"] == "completed", status
        (task,) = tasks_of(status)
        assert task["state"] == "passed", task
        assert a.get(f"/api/v1/jobs/{job_id}/logs").text == counted(lines)
        assert all_online(a, "frozen", FLEET)
        assert counter(a, "testfleet_agents_lost_total") == 0
        assert fleet.status()["failures"] == 0  # no connection dropped
        assert fleet.status()["online"] == FLEET


def test_agents_of_a_hub_frozen_past_the_hub_timeout_are_back_within_5_s_of_its_return(
    tmp_path: Path,
) -> None:
    # B is frozen for three times its --hub-timeout: A judges its agents lost; their
    # connections stay open, and once B runs again they are online again at once.
    common = ["--agent-timeout", "3", "--hub-timeout", "2"]
    with (
        two_hubs(tmp_path, common, common) as (a_hub, b_hub),
        swarm(tmp_path, b_hub.url, FLEET, "thawed") as fleet,
        httpx.Client(base_url=a_hub.url, timeout=30) as a,
    ):
        wait_until(lambda: all_online(a, "thawed", FLEET), 60, what="the fleet online")
        with frozen(b_hub):
            wait_until(
                lambda: all(s == "offline" for s in agent_states(a, "thawed").values()),
                20,
                what="A to judge the frozen hub's agents lost",
            )
            time.sleep(2)
        thawed = time.monotonic()
        wait_until(lambda: all_online(a, "thawed", FLEET), 5, 0.1, "the fleet online again")
        back_in = time.monotonic() - thawed
        assert back_in <= 5.0
        assert fleet.status()["failures"] == 0  # the connections stayed open throughout
        assert counter(a, "testfleet_agents_lost_total") == FLEET
        time.sleep(4)  # past the agents' timeout: none is judged lost again
        assert all_online(a, "thawed", FLEET)
        with httpx.Client(base_url=b_hub.url, timeout=30) as b:
            assert all_online(b, "thawed", FLEET)


def test_agents_of_a_killed_hub_reconnect_to_the_other_and_every_job_completes(
    tmp_path: Path,
) -> None:
    # The agents reach B through a proxy (a load balancer); B runs the jobs and is killed
    # while their tasks run; the proxy then sends the agents to A, which takes the jobs over.
    common = ["--agent-timeout", "3"]
    with two_hubs(tmp_path, common, common) as (a_hub, b_hub):
        proxy = CuttableProxy(b_hub.port)
        with proxy, httpx.Client(base_url=a_hub.url, timeout=30) as a:
            agents = [
                Agent(tmp_path, f"http://127.0.0.1:{proxy.port}", f"moved-{n}", slots=2).start()
                for n in range(3)
            ]
            try:
                with httpx.Client(base_url=b_hub.url, timeout=30) as b:
                    for agent in agents:
                        agent.wait_online(b)
                    lines = 40
                    jobs = [start(b, counting_job(f"b-{n}", lines, 0.25)) for n in range(6)]

                    def all_running() -> bool:
                        return all(
                            b.get(f"/api/v1/jobs/{job}/logs").text.count("\n") >= 2 for job in jobs
                        )

                    wait_until(all_running, 30, what="every job running")
                    owners = {
                        event["data"]["server_id"]
                        for job in jobs
                        for event in b.get(f"/api/v1/jobs/{job}/events").json()["events"]
                        if event["kind"] == "job_started"
                    }
                    # B runs those submitted to it, except any A claimed first (both hubs
                    # claim queued jobs; A's tasks then reach the agents through B).
                    assert f"hub-{b_hub.port}" in owners, owners
                proxy.target_port = a_hub.port
                b_hub.kill()
                for job in jobs:
                    status = wait_state(a, job, timeout=90)
                    assert status["state"] == "completed", status
                    (task,) = tasks_of(status)
                    assert task["state"] == "passed", task
                    assert a.get(f"/api/v1/jobs/{job}/logs").text == counted(lines)
                listed = {x["name"]: x for x in a.get("/api/v1/agents").json()["agents"]}
                for agent in agents:
                    assert listed[agent.name]["state"] == "online"
                    assert listed[agent.name]["hub"] == f"hub-{a_hub.port}"
            finally:
                for agent in agents:
                    agent.stop()


STORM = 300


def test_a_fleet_reconnecting_at_once_after_a_hub_restart_all_registers(tmp_path: Path) -> None:
    with fresh_database() as url:
        hub = Hub(tmp_path, db_url=url).start()
        try:
            with (
                swarm(tmp_path, hub.url, STORM, "storm") as fleet,
                httpx.Client(base_url=hub.url, timeout=30) as client,
            ):
                wait_until(lambda: fleet.status()["online"] == STORM, 90, what="the fleet online")
                assert fleet.status()["handshake_timeouts"] == 0
                hub.kill()
                wait_until(lambda: fleet.status()["online"] == 0, 30, what="the fleet to notice")
                hub.start()
                back = time.monotonic()
                wait_until(
                    lambda: fleet.status()["online"] == STORM, 30, 0.2, "the fleet back online"
                )
                took = time.monotonic() - back
                wait_until(lambda: all_online(client, "storm", STORM), 10, what="all listed")
                status = fleet.status()
                assert status["handshake_timeouts"] == 0, status
                assert status["refused"] == 0, status
                assert took < 30
                assert counter(client, "testfleet_agents_connected") == STORM
        finally:
            hub.stop()
