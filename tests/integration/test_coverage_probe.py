"""The real probe in a real application process, against a real hub: its coverage equals
coverage.py's own for the same program and inputs, across a dropped connection and a hub
killed mid-session; tests are told apart by the middleware's header."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx
import pytest
from websockets.sync.client import connect

from testfleet.protocol.coverage import MAX_PART_OBJECTS
from tests.support.processes import Hub, cli_command, wait_until
from tests.support.proxy import CuttableProxy

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SHOP = ROOT / "examples" / "apps" / "shop"
APP = ROOT / "tests" / "support" / "probe_app.py"


@dataclass
class App:
    """probe_app.py running, talked to line by line."""

    process: subprocess.Popen[str]
    log: IO[str]

    def do(self, command: str) -> str:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline().strip()
        assert answer.startswith("ok"), f"{command}: {answer!r}"
        return answer[3:]

    def exit(self) -> None:
        self.do("exit")
        self.close()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(30)
        for stream in (self.process.stdin, self.process.stdout, self.log):
            if stream is not None:
                stream.close()


def start_app(hub_url: str, build: str, workdir: Path, *options: str) -> App:
    command = [
        *cli_command(),
        "probe",
        "--hub",
        hub_url,
        "--app",
        "shop",
        "--build",
        build,
        "--source",
        str(SHOP / "shop"),
        "--base",
        str(SHOP),
        *options,
        "--",
        sys.executable,
        str(APP),
    ]
    log = (workdir / f"app-{build}.log").open("a")
    process = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True, cwd=SHOP
    )
    app = App(process, log)
    STARTED.append(app)
    return app


STARTED: list[App] = []


@pytest.fixture(autouse=True)
def _close_apps() -> Iterator[None]:
    yield
    while STARTED:
        STARTED.pop().close()


def reference(commands: list[str], workdir: Path) -> dict[str, list[int]]:
    """coverage.py run directly on the same commands: executed lines per file."""
    files = reference_files(commands, workdir)
    return {path: data["executed_lines"] for path, data in files.items()}


def reference_files(commands: list[str], workdir: Path, *options: str) -> dict[str, Any]:
    """coverage.py's JSON report of the same commands run directly: its files."""
    data = workdir / ".coverage-ref"
    env = {**os.environ, "COVERAGE_FILE": str(data)}
    run = [
        sys.executable,
        "-m",
        "coverage",
        "run",
        *options,
        "--source",
        str(SHOP / "shop"),
        str(APP),
    ]
    subprocess.run(
        run,
        input="\n".join([*commands, "exit"]) + "\n",
        text=True,
        env=env,
        cwd=SHOP,
        check=True,
        capture_output=True,
        timeout=120,
    )
    out = workdir / "ref.json"
    subprocess.run(
        [sys.executable, "-m", "coverage", "json", "-o", str(out)],
        env=env,
        cwd=SHOP,
        check=True,
        capture_output=True,
        timeout=120,
    )
    files: dict[str, Any] = json.loads(out.read_text())["files"]
    return files


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[Hub]:
    running = Hub(tmp_path).start()
    yield running
    running.stop()


def api(hub: Hub) -> httpx.Client:
    return httpx.Client(base_url=hub.url, timeout=60)


def wait_probe(client: httpx.Client, build: str) -> str:
    found: list[str] = []

    def connected() -> bool:
        agents = client.get("/api/v1/coverage/agents").json()["agents"]
        found[:] = [a["agent_id"] for a in agents if a["build"] == build]
        return bool(found)

    wait_until(connected, 30, 0.05, f"a probe of build {build}")
    return found[0]


def dispatch(client: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/api/v1/coverage/apps/shop/dispatch-action", json=body)
    assert response.status_code == 200, response.text
    return response.json()["sessions"][0]


def covered_lines(client: httpx.Client, session_id: str) -> dict[str, list[int]]:
    report = client.get(f"/api/v1/coverage/sessions/{session_id}/report").json()
    return {path: data["covered_lines"] for path, data in report["files"].items()}


def same_as_reference(hub_lines: dict[str, list[int]], ref: dict[str, list[int]]) -> None:
    assert ref, "coverage.py measured nothing"
    for path, lines in ref.items():
        assert hub_lines.get(path) == lines, path
    for path in set(hub_lines) - set(ref):
        assert hub_lines[path] == [], f"{path} covered by the hub, never run by coverage.py"


def test_the_hubs_covered_lines_equal_coverage_py(hub: Hub, tmp_path: Path) -> None:
    commands = ["run 300 1", "run 50 7", "flush"]
    with api(hub) as client:
        app = start_app(hub.url, "1.0", tmp_path)
        wait_probe(client, "1.0")
        session = dispatch(client, {"type": "START", "payload": {"sessionId": "exact"}})
        for command in commands:
            app.do(command)
        finished = dispatch(client, {"type": "STOP", "payload": {"sessionId": "exact"}})
        lines = covered_lines(client, "exact")
        app.exit()

    assert session["state"] == "active" and finished["state"] == "finished"
    same_as_reference(lines, reference(commands, tmp_path))


def test_a_thread_running_before_the_session_is_counted(hub: Hub, tmp_path: Path) -> None:
    with api(hub) as client:
        app = start_app(hub.url, "1.0", tmp_path)
        wait_probe(client, "1.0")
        app.do("thread 100")  # the thread exists before the session
        dispatch(client, {"type": "START", "payload": {"sessionId": "threads"}})
        app.do("release")
        app.do("flush")
        dispatch(client, {"type": "STOP", "payload": {"sessionId": "threads"}})
        lines = covered_lines(client, "threads")
        app.exit()

    same_as_reference(lines, reference(["run 100 5"], tmp_path))


def test_with_branches_the_hubs_branches_equal_coverage_py(hub: Hub, tmp_path: Path) -> None:
    commands = ["run 60 2", "web nope test_x", "flush"]
    with api(hub) as client:
        app = start_app(hub.url, "branchy", tmp_path, "--branch")
        wait_probe(client, "branchy")
        dispatch(client, {"type": "START", "payload": {"sessionId": "arcs"}})
        for command in commands:
            app.do(command)
        finished = dispatch(client, {"type": "STOP", "payload": {"sessionId": "arcs"}})
        report = client.get("/api/v1/coverage/sessions/arcs/report").json()
        app.exit()

    ref = reference_files(commands, tmp_path, "--branch")
    for path, data in ref.items():
        mine = report["files"][path]
        assert mine["covered_lines"] == data["executed_lines"], path
        assert mine["executed_branches"] == data["executed_branches"], path
        assert mine["missing_branches"] == data["missing_branches"], path
    measured = sum(
        d["summary"]["covered_lines"] + d["summary"]["covered_branches"] for d in ref.values()
    )
    assert finished["totals"]["covered"] == measured
    assert any(data["missing_branches"] for data in ref.values())


def test_nothing_is_lost_when_the_connection_drops_mid_session(hub: Hub, tmp_path: Path) -> None:
    commands = ["run 20 1", "flush", "run 200 3", "flush"]
    with CuttableProxy(hub.port) as proxy, api(hub) as client:
        app = start_app(f"http://127.0.0.1:{proxy.port}", "1.0", tmp_path)
        wait_probe(client, "1.0")
        dispatch(client, {"type": "START", "payload": {"sessionId": "cut"}})
        app.do(commands[0])
        app.do(commands[1])
        proxy.cut()
        app.do(commands[2])
        assert app.do(commands[3]) == "True"  # after reconnecting by itself
        dispatch(client, {"type": "STOP", "payload": {"sessionId": "cut"}})
        lines = covered_lines(client, "cut")
        app.exit()

    assert proxy.accepted >= 2
    same_as_reference(lines, reference(commands, tmp_path))


def test_nothing_is_lost_when_the_hub_is_killed_mid_session(hub: Hub, tmp_path: Path) -> None:
    commands = ["run 20 1", "flush", "run 200 3", "flush"]
    with api(hub) as client:
        app = start_app(hub.url, "1.0", tmp_path)
        wait_probe(client, "1.0")
        dispatch(client, {"type": "START", "payload": {"sessionId": "crash", "isRealtime": True}})
        app.do(commands[0])
        app.do(commands[1])
        hub.kill()
        app.do(commands[2])
        hub.start()
        assert app.do(commands[3]) == "True"
        dispatch(client, {"type": "STOP", "payload": {"sessionId": "crash"}})
        lines = covered_lines(client, "crash")
        app.exit()

    same_as_reference(lines, reference(commands, tmp_path))


def test_the_middleware_header_splits_coverage_by_test(hub: Hub, tmp_path: Path) -> None:
    with api(hub) as client:
        app = start_app(hub.url, "1.0", tmp_path)
        wait_probe(client, "1.0")
        dispatch(client, {"type": "START", "payload": {"sessionId": "web", "testName": "all"}})
        app.do("web apple test_food")
        app.do("web lamp test_home")
        app.do("web nope test_unknown")
        app.do("flush")
        dispatch(client, {"type": "STOP", "payload": {"sessionId": "web"}})
        report = client.get("/api/v1/coverage/sessions/web/report").json()
        app.exit()

    tests = report["tests"]
    assert {"test_food", "test_home", "test_unknown"} <= set(tests)
    pricing_food = tests["test_food"]["files"]["shop/pricing.py"]
    pricing_home = tests["test_home"]["files"]["shop/pricing.py"]
    assert 13 in pricing_food and 13 not in pricing_home  # `return REDUCED`: food only
    assert 14 in pricing_home and 14 not in pricing_food  # `return STANDARD`
    assert "shop/pricing.py" not in tests["test_unknown"]["files"]  # refused before pricing


def test_with_auth_a_probe_needs_an_agent_token(tmp_path: Path) -> None:
    secured = Hub(tmp_path, auth=True)
    agent_token = secured.create_token("probe", "agent")
    viewer_token = secured.create_token("watcher", "viewer")
    secured.start()
    try:
        outcomes = {}
        for name, token in (("none", None), ("viewer", viewer_token), ("agent", agent_token)):
            env = {k: v for k, v in os.environ.items() if not k.startswith("TESTFLEET_")}
            if token:
                env["TESTFLEET_TOKEN"] = token
            outcomes[name] = subprocess.run(
                [
                    *cli_command(),
                    "probe",
                    "--hub",
                    secured.url,
                    "--app",
                    "locked",
                    "--build",
                    name,
                    "--source",
                    "shop",
                    "--",
                    sys.executable,
                    "-m",
                    "shop.main",
                    "--orders",
                    "3",
                ],
                cwd=SHOP,
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
        headers = {"Authorization": f"Bearer {viewer_token}"}
        with httpx.Client(base_url=secured.url, headers=headers, timeout=30) as client:
            builds = client.get("/api/v1/coverage/builds?app=locked").json()["builds"]
            refused = client.post(
                "/api/v1/coverage/apps/locked/dispatch-action", json={"type": "STOP_ALL"}
            )
    finally:
        secured.stop()

    assert all(o.returncode == 0 and "takings" in o.stdout for o in outcomes.values())
    assert "unauthenticated" in outcomes["none"].stderr
    assert "forbidden" in outcomes["viewer"].stderr
    assert [b["build"] for b in builds] == ["agent"]  # only the agent token's probe got in
    assert refused.status_code == 403  # actions are for operators


def test_a_python_subprocess_joins_the_applications_session_from_its_first_line(
    hub: Hub, tmp_path: Path
) -> None:
    """The environment form reaches subprocesses; a process that connects while an
    application-wide session is open counts what it ran before connecting too."""
    parent = (
        "import subprocess, sys\n"
        "subprocess.run([sys.executable, '-m', 'shop.main', '--orders', '40'], check=True)\n"
    )
    with api(hub) as client:
        start_app(hub.url, "1.0", tmp_path)  # holds the session open
        wait_probe(client, "1.0")
        dispatch(client, {"type": "START", "payload": {"sessionId": "family"}})
        run = subprocess.run(
            [
                *cli_command(),
                "probe",
                "--hub",
                hub.url,
                "--app",
                "shop",
                "--build",
                "1.0",
                "--source",
                str(SHOP / "shop"),
                "--base",
                str(SHOP),
                "--",
                sys.executable,
                "-c",
                parent,
            ],
            cwd=SHOP,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        session = client.get("/api/v1/coverage/sessions/family").json()
        dispatch(client, {"type": "STOP", "payload": {"sessionId": "family"}})
        lines = covered_lines(client, "family")

    assert run.returncode == 0, run.stderr
    assert len(session["agents"]) == 3  # the parked app, the parent, the child
    data = tmp_path / ".coverage-child"
    env = {**os.environ, "COVERAGE_FILE": str(data)}
    subprocess.run(
        [
            sys.executable,
            "-m",
            "coverage",
            "run",
            "--source",
            str(SHOP / "shop"),
            "-m",
            "shop.main",
            "--orders",
            "40",
        ],
        cwd=SHOP,
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    subprocess.run(
        [sys.executable, "-m", "coverage", "json", "-o", str(tmp_path / "c.json")],
        cwd=SHOP,
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    files = json.loads((tmp_path / "c.json").read_text())["files"]
    same_as_reference(lines, {path: data["executed_lines"] for path, data in files.items()})


def test_a_part_of_65535_classes_goes_through_the_real_socket(hub: Hub) -> None:
    """The largest part Drill4J allows, over uvicorn's WebSocket, is stored and acknowledged."""
    classes = [
        {"id": n, "name": f"m{n}.py", "lines": list(range(1, 21)), "functions": []}
        for n in range(MAX_PART_OBJECTS)
    ]
    register = {
        "type": "REGISTER",
        "agentId": "big-1",
        "instanceId": "i1",
        "app": "big",
        "build": "1",
        "buildChecksum": "c",
        "classesCount": len(classes),
        "wireVersion": 1,
        "sessions": [],
    }
    url = hub.url.replace("http://", "ws://") + "/api/v1/coverage/probes/connect"
    with connect(url, max_size=None, open_timeout=30) as socket, api(hub) as client:
        socket.send(json.dumps(register))
        assert json.loads(socket.recv(timeout=30))["needClasses"] is True
        for start in range(0, len(classes), 10_000):
            part = {"type": "INIT_DATA_PART", "astEntities": classes[start : start + 10_000]}
            socket.send(json.dumps(part))
        socket.send(json.dumps({"type": "INITIALIZED", "msg": "Initialized"}))
        assert json.loads(socket.recv(timeout=60))["type"] == "READY"
        with ThreadPoolExecutor(1) as pool:
            started = pool.submit(
                client.post,
                "/api/v1/coverage/agents/big-1/dispatch-action",
                json={"type": "START", "payload": {"sessionId": "huge"}},
            )
            assert json.loads(socket.recv(timeout=30))["type"] == "START_AGENT_SESSION"
            socket.send(
                json.dumps(
                    {"type": "SESSION_STARTED", "sessionId": "huge", "testType": "MANUAL", "ts": 1}
                )
            )
            assert started.result(timeout=30).json()["sessions"][0]["state"] == "active"
        data = [
            {"id": n, "className": f"m{n}.py", "probes": [i % 2 == 0 for i in range(20)]}
            for n in range(MAX_PART_OBJECTS)
        ]
        frame = json.dumps(
            {"type": "COVERAGE_DATA_PART", "sessionId": "huge", "data": data, "seq": 1}
        )
        socket.send(frame)
        assert json.loads(socket.recv(timeout=60)) == {"type": "ACK", "seq": 1}
        info = client.get("/api/v1/coverage/sessions/huge").json()

    assert len(frame) > 10_000_000
    assert info["totals"]["covered"] == 10 * MAX_PART_OBJECTS
