"""Faults: lost agents, a killed hub, dropped connections, and bad agent messages."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect

from tests.support.jobs import cmd_job, start, tasks_of, wait_state, wait_task_running
from tests.support.processes import Agent, Hub, wait_until
from tests.support.proxy import CuttableProxy

pytestmark = pytest.mark.integration

# A step that prints numbered lines for a while: its log shows any loss or duplicate.
COUNTING = (
    "import time\nfor i in range({n}):\n    print(f'line {{i}}', flush=True)\n"
    "    time.sleep({pause})\n"
)


def counting_job(name: str, n: int = 30, pause: float = 0.1, retry: int = 0) -> dict[str, object]:
    """A job whose single cmd step prints `n` numbered lines, `pause` seconds apart."""
    return cmd_job(name, COUNTING.format(n=n, pause=pause), retry=retry)


def expected_log(n: int) -> str:
    """What `counting_job` prints."""
    return "".join(f"line {i}\n" for i in range(n))


def assert_each_event_once(client: httpx.Client, job_id: int) -> Counter[str]:
    """Every task and step event exactly once per task/step; returns the kinds counted."""
    events = client.get(f"/api/v1/jobs/{job_id}/events", params={"limit": 10000}).json()
    kinds = Counter(e["kind"] for e in events["events"])
    status = client.get(f"/api/v1/jobs/{job_id}").json()
    tasks = tasks_of(status)
    per_task = Counter(
        (e["kind"], e["task_id"], e["data"].get("step_index"))
        for e in events["events"]
        if e["task_id"] is not None and e["kind"] != "log"
    )
    assert all(count == 1 for count in per_task.values()), per_task
    assert kinds["task_started"] == len(tasks)
    assert kinds["task_finished"] == len(tasks)
    assert kinds["job_finished"] == 1
    return kinds


def test_killed_agent_tasks_end_incomplete_and_are_retried_elsewhere(tmp_path: Path) -> None:
    hub = Hub(tmp_path, extra=["--agent-timeout", "3"]).start()
    first = Agent(tmp_path, hub.url, "victim", slots=1).start()
    try:
        with httpx.Client(base_url=hub.url, timeout=30) as client:
            first.wait_online(client)
            job_id = start(client, counting_job("survives", n=20, pause=0.1, retry=1))
            task = wait_task_running(client, job_id)
            assert task["agent"] == "victim"
            spare = Agent(tmp_path, hub.url, "spare", slots=1).start().wait_online(client)
            killed_at = time.monotonic()
            first.kill()

            def first_incomplete() -> bool:
                status = client.get(f"/api/v1/jobs/{job_id}").json()
                return tasks_of(status)[0]["state"] == "incomplete"

            wait_until(first_incomplete, 30, 0.1, "the killed agent's task to be incomplete")
            detected = time.monotonic() - killed_at
            assert detected < 30  # a bound (the figure is in benchmarks/jobs.py)
            devices = {d["device_id"]: d for d in client.get("/api/v1/devices").json()["devices"]}
            assert devices["victim:slot-0"]["state"] == "offline"
            agents = {a["name"]: a for a in client.get("/api/v1/agents").json()["agents"]}
            assert agents["victim"]["state"] == "offline"
            status = wait_state(client, job_id, timeout=30)
            assert status["state"] == "completed", status
            lost, retried = tasks_of(status)
            assert "victim" in lost["error"] and lost["attempt"] == 1
            assert retried["agent"] == "spare" and retried["attempt"] == 2
            assert retried["state"] == "passed"
            spare.stop()
    finally:
        first.kill()
        hub.stop()


def wait_log_lines(client: httpx.Client, job_id: int, lines: int) -> None:
    """Wait until the hub has stored at least `lines` lines of the job's log."""

    def enough() -> bool:
        return client.get(f"/api/v1/jobs/{job_id}/logs").text.count("\n") >= lines

    wait_until(enough, 30, what=f"{lines} log lines of job {job_id}")


def test_killed_hub_restarts_and_the_job_completes_with_every_event_once(tmp_path: Path) -> None:
    hub = Hub(tmp_path).start()
    agent = Agent(tmp_path, hub.url, "steady", slots=1).start()
    n = 30
    try:
        with httpx.Client(base_url=hub.url, timeout=30) as client:
            agent.wait_online(client)
            job_id = start(client, counting_job("hub-dies", n=n, pause=0.1))
            wait_task_running(client, job_id)
            wait_log_lines(client, job_id, 5)
            hub.kill()
            time.sleep(1.0)  # the hub stays down a while; the agent buffers its events
            hub.start()
            status = wait_state(client, job_id, timeout=40)
            assert status["state"] == "completed", status
            assert client.get(f"/api/v1/jobs/{job_id}/logs").text == expected_log(n)
            kinds = assert_each_event_once(client, job_id)
            assert kinds["job_started"] == 1 and kinds["task_created"] == 1
    finally:
        agent.stop()
        hub.stop()


def test_dropped_agent_connection_resends_events_stored_once(tmp_path: Path) -> None:
    hub = Hub(tmp_path).start()
    assert hub.process is not None
    n = 40
    with CuttableProxy(hub.port) as proxy:
        agent = Agent(tmp_path, f"http://127.0.0.1:{proxy.port}", "flaky", slots=1).start()
        try:
            with httpx.Client(base_url=hub.url, timeout=30) as client:
                agent.wait_online(client)
                job_id = start(client, counting_job("drops", n=n, pause=0.05))
                wait_task_running(client, job_id)
                for cut in range(1, 4):
                    wait_log_lines(client, job_id, 8 * cut)  # events flow between cuts
                    proxy.cut()
                status = wait_state(client, job_id, timeout=40)
                assert status["state"] == "completed", status
                assert proxy.accepted >= 2  # it did reconnect
                assert client.get(f"/api/v1/jobs/{job_id}/logs").text == expected_log(n)
                assert_each_event_once(client, job_id)
        finally:
            agent.stop()
            hub.stop()


def _register(ws: object, name: str) -> dict[str, object]:
    ws.send(
        json.dumps(
            {
                "type": "REGISTER",
                "name": name,
                "instance_id": "test-1",  # type: ignore[attr-defined]
                "version": "test",
                "wire_version": 1,
                "devices": [],
            }
        )
    )
    return json.loads(ws.recv(timeout=10))  # type: ignore[attr-defined]


def test_malformed_and_unknown_agent_messages_get_error_and_work_goes_on(live_hub: object) -> None:
    url = live_hub.url.replace("http://", "ws://") + "/api/v1/agents/connect"  # type: ignore[attr-defined]
    with connect(url) as ws:
        assert _register(ws, "raw-agent")["type"] == "INITIALIZED"
        ws.send("{not json")
        reply = json.loads(ws.recv(timeout=10))
        assert reply["type"] == "ERROR" and reply["code"] == "malformed_message"
        ws.send(json.dumps({"type": "TELEPORT"}))
        reply = json.loads(ws.recv(timeout=10))
        assert reply["code"] == "unknown_message" and "HEARTBEAT" in reply["message"]
        ws.send(json.dumps({"type": "TASK_STARTED", "seq": "x", "task_id": 1}))
        reply = json.loads(ws.recv(timeout=10))
        assert reply["code"] == "malformed_message" and reply["location"] == "/seq"
        ws.send(
            json.dumps(
                {"type": "DEVICE_ADDED", "seq": 1, "device": {"name": "phone-1", "kind": "android"}}
            )
        )
        reply = json.loads(ws.recv(timeout=10))
        assert reply == {"type": "ACK", "seq": 1}
    with httpx.Client(base_url=live_hub.url, timeout=30) as client:  # type: ignore[attr-defined]
        devices = {d["device_id"] for d in client.get("/api/v1/devices").json()["devices"]}
        assert "raw-agent:phone-1" in devices
        status = wait_state(client, start(client, cmd_job("after-garbage", "print(1)")))
        assert status["state"] == "completed"


def test_first_message_must_register_and_names_are_unique(live_hub: object) -> None:
    url = live_hub.url.replace("http://", "ws://") + "/api/v1/agents/connect"  # type: ignore[attr-defined]
    with connect(url) as ws:
        ws.send(json.dumps({"type": "HEARTBEAT"}))
        reply = json.loads(ws.recv(timeout=10))
        assert reply["code"] == "not_registered" and reply["fatal"] is True
    with connect(url) as ws:
        reply = _register(ws, live_hub.agent_name)  # type: ignore[attr-defined]
        assert reply["code"] == "name_in_use"


def test_event_timeout_answers_503_not_a_hang(tmp_path: Path) -> None:
    hub = Hub(tmp_path, extra=["--event-timeout", "1"]).start()
    try:
        database = sqlite3.connect(
            tmp_path / "data" / "testfleet.db", timeout=1, isolation_level=None
        )
        database.execute("BEGIN IMMEDIATE")  # hold the write lock, as a stuck writer would
        try:
            with httpx.Client(base_url=hub.url, timeout=30) as client:
                began = time.monotonic()
                response = client.post("/api/v1/jobs", json=cmd_job("locked", "print(1)"))
                elapsed = time.monotonic() - began
                assert response.status_code == 503, response.text
                assert response.json()["code"] == "event_timeout"
                assert "within 1 s" in response.json()["message"]
                assert elapsed < 5
        finally:
            database.execute("ROLLBACK")
            database.close()
        with httpx.Client(base_url=hub.url, timeout=30) as client:
            assert client.get("/readyz").status_code == 200
    finally:
        hub.stop()


# A step whose program leaves a grandchild (in its process group) and records its pid.
ORPHAN_MAKER = (
    "import subprocess, sys, time\n"
    "child = subprocess.Popen(['sleep', '300'])\n"
    "open(sys.argv[1], 'w').write(str(child.pid))\n"
    "time.sleep(300)\n"
)


def pid_alive(pid: int) -> bool:
    """Whether a process runs (a zombie does not count)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def orphan_job(pid_file: Path) -> dict[str, object]:
    job = cmd_job("orphans", ORPHAN_MAKER)
    job["tests"][0]["steps"][0]["params"]["args"].append(str(pid_file))  # type: ignore[index]
    return job


def test_a_killed_agent_leaves_no_step_processes_behind(tmp_path: Path) -> None:
    hub = Hub(tmp_path).start()
    agent = Agent(tmp_path, hub.url, "reaped", slots=1).start()
    pid_file = tmp_path / "grandchild.pid"
    try:
        with httpx.Client(base_url=hub.url, timeout=30) as client:
            agent.wait_online(client)
            start(client, orphan_job(pid_file))
            wait_until(lambda: pid_file.exists() and pid_file.read_text(), 20, what="the child")
            grandchild = int(pid_file.read_text())
            assert pid_alive(grandchild)
            agent.kill()
            wait_until(lambda: not pid_alive(grandchild), 10, what="the orphan to be ended")
    finally:
        agent.stop()
        hub.stop()


def test_an_agent_ends_what_an_earlier_one_left(tmp_path: Path) -> None:
    hub = Hub(tmp_path).start()
    state = tmp_path / "state"
    env = {"XDG_STATE_HOME": str(state)}
    first = Agent(tmp_path, hub.url, "again", slots=1, env=env).start()
    pid_file = tmp_path / "grandchild.pid"
    try:
        with httpx.Client(base_url=hub.url, timeout=30) as client:
            first.wait_online(client)
            start(client, orphan_job(pid_file))
            wait_until(lambda: pid_file.exists() and pid_file.read_text(), 20, what="the child")
            grandchild = int(pid_file.read_text())
            reaper = next(
                p
                for p in Path("/proc").iterdir()
                if p.name.isdigit()
                and "testfleet.agent.reaper" in _cmdline(p)
                and _parent(p) == first.pid
            )
            os.kill(int(reaper.name), signal.SIGKILL)  # the reaper dies with the agent
            first.kill()
            time.sleep(0.5)
            assert pid_alive(grandchild)  # nothing ended it yet
            second = Agent(tmp_path, hub.url, "again", slots=1, env=env).start()
            wait_until(lambda: not pid_alive(grandchild), 10, what="the new agent to end it")
            second.stop()
    finally:
        first.stop()
        hub.stop()


def _cmdline(proc: Path) -> str:
    try:
        return (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _parent(proc: Path) -> int:
    try:
        return int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError):
        return -1
