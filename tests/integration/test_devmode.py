"""Developer mode against a real hub and real agents: pausing at step boundaries, one
developer per job, looking around, and the faults (bad input, a vanished developer, a
dropped agent connection, a job that ends while attached)."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.conftest import LiveHub
from tests.support.jobs import start, wait_state
from tests.support.postgres import fresh_database
from tests.support.processes import Agent, Hub, cli_command, wait_until
from tests.support.proxy import CuttableProxy

pytestmark = pytest.mark.integration


def steps_job(name: str, first_sleep: float = 0.0, fail_second: bool = False) -> dict[str, Any]:
    """A job of one test with steps `one` (sleeps), `two` (fails when asked), `three`."""
    second = "import sys; sys.exit(3)" if fail_second else "print('two ran')"
    return {
        "name": name,
        "tests": [
            {
                "name": "t",
                "steps": [
                    {
                        "name": "one",
                        "plugin": "cmd",
                        "params": {
                            "executable": "python3",
                            "args": ["-c", f"import time; time.sleep({first_sleep})"],
                        },
                    },
                    {
                        "name": "two",
                        "plugin": "cmd",
                        "params": {"executable": "python3", "args": ["-c", second]},
                    },
                    {"name": "three", "plugin": "echo", "params": {"text": "three ran"}},
                ],
            }
        ],
    }


class Dev:
    """A developer-mode socket: send commands, wait for messages."""

    def __init__(self, socket: ClientConnection) -> None:
        self.socket = socket
        self.seen: list[dict[str, Any]] = []

    def send(self, cmd: str, **args: Any) -> None:
        """Send one command."""
        self.socket.send(json.dumps({"cmd": cmd, **args}))

    def wait(self, what: str, timeout: float = 20.0, **match: Any) -> dict[str, Any]:
        """The next message `what` (whose data has `match`), within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {what!r} {match} within {timeout} s; seen: {self.seen}")
            try:
                message = json.loads(self.socket.recv(timeout=left))
            except TimeoutError:
                continue
            self.seen.append(message)
            data = message["data"]
            if message["what"] == what and all(data.get(k) == v for k, v in match.items()):
                return message

    def status(self, **match: Any) -> dict[str, Any]:
        """Ask for the status; the next one that has `match`."""
        self.send("status")
        return self.wait("status", **match)["data"]


def ws_url(base: str, job_id: int, token: str | None = None) -> str:
    """The developer WebSocket of a job."""
    url = base.replace("http://", "ws://") + f"/api/v1/jobs/{job_id}/developer/ws"
    return url + (f"?token={token}" if token else "")


def open_dev(base: str, job_id: int, who: str = "ann", token: str | None = None) -> Dev:
    """A developer socket as `who` (a requestor name without auth, or a token)."""
    headers = {"X-Testfleet-Requestor": who} if token is None else {}
    token = token or None
    socket = connect(ws_url(base, job_id, token), additional_headers=headers, open_timeout=10)
    return Dev(socket.__enter__())  # closed by the test (socket.close())


def step_state(client: httpx.Client, job_id: int, index: int) -> str:
    """The state of step `index` of the job's first task."""
    status = client.get(f"/api/v1/jobs/{job_id}").json()
    return str(status["runs"][0]["tests"][0]["tasks"][0]["steps"][index]["state"])


def running(client: httpx.Client, job_id: int) -> None:
    """Wait until the job's first task runs."""

    def started() -> bool:
        status = client.get(f"/api/v1/jobs/{job_id}").json()
        tests = status["runs"][0]["tests"] if status["runs"] else []
        return bool(tests and tests[0]["tasks"] and tests[0]["tasks"][0]["state"] == "running")

    wait_until(started, 30, 0.05, f"job {job_id} running")


def test_pause_before_a_step_hold_it_and_resume_to_the_end(
    live_hub: LiveHub, client: httpx.Client
) -> None:
    job_id = start(client, steps_job("dev-pause", first_sleep=1.0))
    running(client, job_id)
    dev = open_dev(live_hub.url, job_id)
    try:
        assert dev.wait("session_started")["data"]["developer_name"] == "ann"
        dev.send("set_pause_at_test", name="two")
        assert dev.wait("status", pause_test_name="two")
        paused = dev.wait("paused")["data"]
        assert paused["step_name"] == "two" and "reached step 'two'" in paused["reason"]

        assert step_state(client, job_id, 1) == "pending"  # step two has not started
        status = client.get(f"/api/v1/jobs/{job_id}").json()
        assert status["state"] == "paused"
        task = status["runs"][0]["tests"][0]["tasks"][0]
        assert task["paused"] == "reached step 'two'" and task["paused_step"] == 1
        devices = client.get("/api/v1/devices").json()["devices"]
        assert any(d["device_id"] == task["device_id"] and d["state"] == "busy" for d in devices)

        now = dev.status(test_execution_paused="reached step 'two'")
        assert now["current_test_full_name"] == "t/two"
        assert now["developer_name"] == "ann" and now["developer_session_tab_count"] == 1
        for field in ("pause_on_failure", "pause_on_next_command", "developer_id"):
            assert field in now
        assert now["developer_session_started_at"]

        second = open_dev(live_hub.url, job_id)  # the same developer's second tab
        assert second.wait("session_joined")
        assert dev.status(developer_session_tab_count=2)
        second.socket.close()
        assert dev.status(developer_session_tab_count=1)  # a closed tab ends nothing

        time.sleep(0.5)
        assert step_state(client, job_id, 1) == "pending"  # still held
        dev.send("resume_test_execution")
        assert dev.wait("resumed")["data"]["by"] == "ann"
        ended = dev.wait("job_finished")
        assert ended["data"]["state"] == "completed"
        with pytest.raises(ConnectionClosed):  # the channel closes after telling
            for _ in range(20):
                dev.socket.recv(timeout=10)
    finally:
        dev.socket.close()
    final = wait_state(client, job_id)
    assert final["state"] == "completed"
    events = client.get(f"/api/v1/jobs/{job_id}/events", params={"limit": 1000}).json()
    kinds = [e["kind"] for e in events["events"]]
    assert kinds.count("task_paused") == 1 and kinds.count("task_resumed") == 1
    assert "developer_session_ended" in kinds  # the job's end closed the session


def test_bad_input_is_answered_and_the_job_is_unharmed(
    live_hub: LiveHub, client: httpx.Client
) -> None:
    job_id = start(client, steps_job("dev-faults", first_sleep=3.0))
    running(client, job_id)
    dev = open_dev(live_hub.url, job_id)
    try:
        dev.wait("session_started")
        dev.send("resume_test_execution", options={"ignore_failure": False})
        assert dev.wait("not_paused")["type"] == "warning"
        dev.send("reboot_the_lab")
        unknown = dev.wait("unknown_command")
        assert unknown["type"] == "warning"
        assert "resume_test_execution" in unknown["data"]["allowed"]
        dev.socket.send("{not json")
        assert dev.wait("bad_json")["type"] == "error"
        dev.socket.send(json.dumps({"cmd": "status", "pad": "x" * 70_000}))
        assert dev.wait("too_large")["type"] == "error"
        dev.socket.send(json.dumps(["status"]))
        assert dev.wait("bad_message")["type"] == "error"
        dev.send("set_pause_on_failure", flag="yes")
        assert dev.wait("bad_argument")["type"] == "error"
        dev.send("run_command", command="ls")
        assert dev.wait("not_paused")["type"] == "warning"  # commands only while paused
        assert dev.status()["job_state"] == "running"
    finally:
        dev.socket.close()
    assert wait_state(client, job_id)["state"] == "completed"  # unharmed by all of it

    finished = open_dev(live_hub.url, job_id)
    refusal = finished.wait("job_not_running")
    assert refusal["type"] == "error" and "completed" in refusal["data"]["message"]


def test_a_second_developer_is_refused_with_the_holders_name_then_takes_over(
    live_hub: LiveHub, client: httpx.Client
) -> None:
    job_id = start(client, steps_job("dev-two", first_sleep=30.0))
    running(client, job_id)
    ann = open_dev(live_hub.url, job_id, "ann")
    try:
        ann.wait("session_started")
        bob = open_dev(live_hub.url, job_id, "bob")
        refused = bob.wait("developer_session_held")
        assert refused["type"] == "error" and refused["data"]["developer_name"] == "ann"
        assert "ann holds job" in refused["data"]["message"]
        ann.send("quit_development_session", cancel_job=False)
        ann.wait("session_ended")
        bob = open_dev(live_hub.url, job_id, "bob")
        assert bob.wait("session_started")["data"]["developer_name"] == "bob"
        bob.send("quit_development_session", cancel_job=True)
        bob.wait("session_ended")
    finally:
        ann.socket.close()
    assert wait_state(client, job_id)["state"] == "cancelled"


def test_looking_around_while_paused_after_a_failed_step(
    live_hub: LiveHub, client: httpx.Client
) -> None:
    job_id = start(client, steps_job("dev-look", first_sleep=1.0, fail_second=True))
    running(client, job_id)
    dev = open_dev(live_hub.url, job_id)
    try:
        dev.wait("session_started")
        dev.send("set_pause_on_failure", flag=True)
        dev.wait("status", pause_on_failure=True)
        paused = dev.wait("paused")["data"]
        assert paused["reason"] == "step 'two' failed"
        dev.send("run_command", command="echo looked-around; pwd; exit 4")
        sent = dev.wait("command_sent")["data"]
        started = dev.wait("command_started", command_id=sent["command_id"])["data"]
        assert started["by"] == "ann"
        output = dev.wait("command_output", command_id=sent["command_id"])["data"]
        assert "looked-around" in output["text"]
        done = dev.wait("command_finished", command_id=sent["command_id"])["data"]
        assert done["exit_code"] == 4
        dev.send("list_directory")
        listing = dev.wait("listing")["data"]
        assert listing["directory"].endswith(f"task-{paused['task_id']}")
        dev.send("log", lines=20)
        assert isinstance(dev.wait("log")["data"]["lines"], list)
        dev.send("screenshot")
        assert dev.wait("no_screenshot")["type"] == "warning"  # a host slot has no browser
        dev.send("resume_test_execution", options={"ignore_failure": True})
        dev.wait("resumed", ignore_failure=True)
    finally:
        dev.socket.close()
    final = wait_state(client, job_id)
    assert final["state"] == "completed"
    steps = final["runs"][0]["tests"][0]["tasks"][0]["steps"]
    assert [s["state"] for s in steps] == ["passed", "failed", "passed"]
    events = client.get(f"/api/v1/jobs/{job_id}/events", params={"limit": 1000}).json()
    ran = [e for e in events["events"] if e["kind"] == "developer_command"]
    assert [(e["data"]["by"], e["data"]["command"]) for e in ran] == [
        ("ann", "echo looked-around; pwd; exit 4")
    ]


@pytest.fixture
def hub_and_agent(tmp_path: Path) -> Iterator[tuple[Hub, Agent, CuttableProxy]]:
    """A hub with a short developer timeout and an agent behind a cuttable proxy."""
    hub = Hub(tmp_path, extra=["--developer-timeout", "2", "--agent-timeout", "10"]).start()
    with CuttableProxy(hub.port) as proxy:
        agent = Agent(tmp_path, f"http://127.0.0.1:{proxy.port}", "dev-agent", slots=1).start()
        try:
            with httpx.Client(base_url=hub.url, timeout=30) as client:
                agent.wait_online(client)
            yield hub, agent, proxy
        finally:
            agent.stop()
            hub.stop()


def test_a_vanished_developer_is_released_after_the_timeout_and_a_dropped_agent_keeps_its_pause(
    hub_and_agent: tuple[Hub, Agent, CuttableProxy],
) -> None:
    hub, _, proxy = hub_and_agent
    with httpx.Client(base_url=hub.url, timeout=30) as client:
        job_id = start(client, steps_job("dev-gone", first_sleep=0.5))
        running(client, job_id)
        dev = open_dev(hub.url, job_id)
        dev.wait("session_started")
        dev.send("set_pause_at_test", name="two")
        dev.wait("paused")
        proxy.cut()  # the agent's connection drops while its task is paused
        dropped = dev.wait("agent_disconnected", timeout=20)
        assert dropped["type"] == "warning"
        back = dev.wait("agent_reconnected", timeout=30)["data"]
        assert back["paused"] == "reached step 'two'"  # kept across the reconnect
        assert client.get(f"/api/v1/jobs/{job_id}").json()["state"] == "paused"
        assert step_state(client, job_id, 1) == "pending"

        dev.socket.close()  # the developer vanishes: released after --developer-timeout 2
        final = wait_state(client, job_id, timeout=40)
        assert final["state"] == "completed"
        events = client.get(f"/api/v1/jobs/{job_id}/events", params={"limit": 1000}).json()
        ended = [e for e in events["events"] if e["kind"] == "developer_session_ended"]
        assert ended and "gone" in ended[0]["data"]["why"]


def test_the_cli_attaches_pauses_at_a_step_and_resumes(
    live_hub: LiveHub, client: httpx.Client, tmp_path: Path
) -> None:
    job_id = start(client, steps_job("dev-cli", first_sleep=6.0))
    running(client, job_id)
    log = tmp_path / "attach.log"
    env = {**os.environ, "TESTFLEET_HUB": live_hub.url}
    with log.open("w") as out:
        attach = subprocess.Popen(
            [*cli_command(), "dev", "attach", str(job_id), "--pause-at", "two"],
            stdin=subprocess.PIPE,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            text=True,
        )
    try:
        wait_until(lambda: "info: paused" in log.read_text(), 30, 0.05, "paused in the CLI")
        assert client.get(f"/api/v1/jobs/{job_id}").json()["state"] == "paused"
        assert step_state(client, job_id, 1) == "pending"
        assert attach.stdin is not None
        attach.stdin.write("bogus\nrun echo from-the-cli\n")
        attach.stdin.flush()
        wait_until(lambda: "from-the-cli" in log.read_text(), 30, 0.05, "command output")
        attach.stdin.write("resume\n")
        attach.stdin.flush()
        assert attach.wait(30) == 0  # the job ended: the session closed
    finally:
        if attach.poll() is None:
            attach.kill()
            attach.wait(10)
        if attach.stdin is not None:
            attach.stdin.close()
    text = log.read_text()
    assert "commands: resume" in text  # the bogus line got the help
    assert "job_finished" in text
    assert wait_state(client, job_id)["state"] == "completed"

    done = subprocess.run(
        [*cli_command(), "dev", "resume", str(job_id)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.returncode == 1 and "job_not_running" in done.stdout


def test_tokens_operators_control_and_viewers_only_watch(auth_hub: LiveHub) -> None:
    with auth_hub.client() as admin:
        tokens = {
            name: admin.post("/api/v1/tokens", json={"name": name, "role": role}).json()["token"]
            for name, role in (
                ("dev-ann", "operator"),
                ("dev-bob", "operator"),
                ("dev-vic", "viewer"),
            )
        }
        job_id = start(admin, steps_job("dev-auth", first_sleep=30.0))
        running(admin, job_id)
        anonymous = open_dev(auth_hub.url, job_id, token="")
        assert anonymous.wait("unauthenticated")["type"] == "error"
        ann = open_dev(auth_hub.url, job_id, token=tokens["dev-ann"])
        try:
            assert ann.wait("session_started")["data"]["developer_name"] == "dev-ann"
            assert ann.status()["developer_id"] is not None
            bob = open_dev(auth_hub.url, job_id, token=tokens["dev-bob"])
            assert bob.wait("developer_session_held")["data"]["developer_name"] == "dev-ann"
            vic = open_dev(auth_hub.url, job_id, token=tokens["dev-vic"])
            assert vic.wait("read_only")
            assert vic.status()["developer_name"] == "dev-ann"  # the viewer sees who holds it
            vic.send("resume_test_execution")
            assert vic.wait("read_only")["type"] == "error"
            vic.socket.close()
            ann.send("quit_development_session", cancel_job=True)
            ann.wait("session_ended")
        finally:
            ann.socket.close()
        assert wait_state(admin, job_id)["state"] == "cancelled"


def test_developer_on_one_hub_controls_an_agent_connected_to_another(tmp_path: Path) -> None:
    """Two hubs on PostgreSQL: the developer's socket on hub A, the agent on hub B; the
    commands go through the store and LISTEN/NOTIFY, the answers come back as events."""
    with fresh_database() as url:
        a = Hub(tmp_path, db_url=url).start()
        b = Hub(tmp_path, db_url=url, extra=["--max-running-jobs", "0"])
        agent = Agent(tmp_path, "", "on-b", slots=1)
        try:
            b.start()
            agent.hub_url = b.url
            agent.start()
            with httpx.Client(base_url=a.url, timeout=30) as client:
                agent.wait_online(client)
                job_id = start(client, steps_job("dev-across", first_sleep=1.0))
                running(client, job_id)
                dev = open_dev(a.url, job_id)
                try:
                    dev.wait("session_started")
                    dev.send("set_pause_at_test", name="two")
                    assert dev.wait("paused")["data"]["step_name"] == "two"
                    assert client.get(f"/api/v1/jobs/{job_id}").json()["state"] == "paused"
                    dev.send("run_command", command="echo across-hubs")
                    output = dev.wait("command_output")["data"]
                    assert "across-hubs" in output["text"]
                    dev.send("resume_test_execution")
                    dev.wait("resumed")
                    assert dev.wait("job_finished")["data"]["state"] == "completed"
                finally:
                    dev.socket.close()
        finally:
            agent.stop()
            b.stop()
            a.stop()


OPEN_SESSION = """
import json, os, urllib.request
url, caps = os.environ["TESTFLEET_WEBDRIVER_URL"], json.loads(os.environ["TESTFLEET_DEVICE_CAPS"])
def call(method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(request, timeout=60))
caps = {k: v for k, v in caps.items() if ":" in k or k == "browserName"}
session = call("POST", "/session", {"capabilities": {"alwaysMatch": caps}})["value"]["sessionId"]
page = "data:text/html,<h1 style='font-size:80px'>developer mode</h1>"
call("POST", f"/session/{session}/url", {"url": page})
print("session", session)
"""

CLOSE_SESSIONS = """
import json, os, urllib.request
url = os.environ["TESTFLEET_WEBDRIVER_URL"]
for s in json.load(urllib.request.urlopen(url + "/sessions", timeout=30))["value"]:
    urllib.request.urlopen(urllib.request.Request(url + "/session/" + s["id"], method="DELETE"))
"""


def test_a_screenshot_of_a_paused_browser_task(tmp_path: Path) -> None:
    hub = Hub(tmp_path).start()
    agent = Agent(tmp_path, hub.url, "browsers", slots=0, providers=["chromium:count=1"])
    try:
        agent.start()
        with httpx.Client(base_url=hub.url, timeout=30) as client:
            wait_until(
                lambda: len(client.get("/api/v1/devices").json()["devices"]) == 1,
                60,
                0.1,
                "the browser device",
            )

            def cmd(name: str, code: str) -> dict[str, Any]:
                params = {"executable": "python3", "args": ["-c", code]}
                return {"name": name, "plugin": "cmd", "timeout": "60s", "params": params}

            descriptor = {
                "name": "dev-screen",
                "tests": [
                    {
                        "name": "t",
                        "devices": {"count": 1, "capabilities": {"browserName": "chrome"}},
                        "steps": [cmd("open", OPEN_SESSION), cmd("close", CLOSE_SESSIONS)],
                    }
                ],
            }
            job_id = start(client, descriptor)
            running(client, job_id)
            dev = open_dev(hub.url, job_id)
            try:
                dev.wait("session_started")
                dev.send("set_pause_at_test", name="close")
                dev.wait("paused", timeout=60)
                dev.send("screenshot")
                shot = dev.wait("screenshot", timeout=30)["data"]
                png = base64.b64decode(shot["png_base64"])
                assert png.startswith(b"\x89PNG") and len(png) > 1000
                dev.send("resume_test_execution")
                assert dev.wait("job_finished", timeout=60)["data"]["state"] == "completed"
            finally:
                dev.socket.close()
    finally:
        agent.stop()
        hub.stop()


def test_quitting_while_paused_lets_the_job_run_on(live_hub: LiveHub, client: httpx.Client) -> None:
    job_id = start(client, steps_job("dev-quit", first_sleep=1.0))
    running(client, job_id)
    dev = open_dev(live_hub.url, job_id)
    try:
        dev.wait("session_started")
        dev.send("set_pause_on_next_command", flag=True)
        dev.wait("paused")
        dev.send("quit_development_session", cancel_job=False)
        assert dev.wait("session_ended")["type"] == "info"
    finally:
        dev.socket.close()
    final = wait_state(client, job_id)
    assert final["state"] == "completed"  # the flags went off with the session: no more pauses
    events = client.get(f"/api/v1/jobs/{job_id}/events", params={"limit": 1000}).json()
    kinds = [e["kind"] for e in events["events"]]
    assert kinds.count("task_paused") == 1 and kinds.count("task_resumed") == 1
    ended = [e for e in events["events"] if e["kind"] == "developer_session_ended"]
    assert [e["data"]["why"] for e in ended] == ["quit"]
