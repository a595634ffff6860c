"""Real hub and agent processes for integration tests, with bounded waits and kept logs."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

START_TIMEOUT = 90.0  # a bound, not a figure: a loaded 2-CPU machine starts a hub slowly


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cli_command() -> list[str]:
    """How to run the CLI of the package under test."""
    return [sys.executable, "-m", "testfleet"]


def wait_until(
    predicate: object, timeout: float, interval: float = 0.05, what: str = "condition"
) -> None:
    """Poll `predicate()` until true; AssertionError naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


@dataclass
class Process:
    """A child process whose output goes to a log file."""

    args: list[str]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start it (again)."""
        log = self.log_path.open("ab")
        self.popen = subprocess.Popen(
            self.args,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **self.env},
        )
        log.close()

    @property
    def pid(self) -> int:
        """The process id."""
        assert self.popen is not None
        return self.popen.pid

    def alive(self) -> bool:
        """True while it runs."""
        return self.popen is not None and self.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL, and reap it."""
        if self.alive():
            assert self.popen is not None
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait(10)

    def terminate(self, timeout: float = 15.0) -> int:
        """SIGTERM; returns the exit code (SIGKILL after `timeout`)."""
        assert self.popen is not None
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                return self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(10)
                raise AssertionError(
                    f"{self.args[3:5]} did not stop within {timeout} s "
                    f"after SIGTERM:\n{self.log_tail()}"
                ) from None
        return self.popen.returncode

    def log_tail(self, lines: int = 60) -> str:
        """The last lines it printed."""
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class Hub:
    """A `testfleet hub` process on a free loopback port."""

    workdir: Path
    port: int = field(default_factory=free_port)
    db_url: str | None = None
    auth: bool = False
    extra: list[str] = field(default_factory=list)
    process: Process | None = None

    @property
    def url(self) -> str:
        """The hub's base URL."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Hub:
        """Start the hub and wait until /readyz says ready."""
        if self.process is None:
            args = [
                *cli_command(),
                "hub",
                "--port",
                str(self.port),
                "--data-dir",
                str(self.workdir / "data"),
                "--server-id",
                f"hub-{self.port}",
                "--auth" if self.auth else "--no-auth",
                "--log-level",
                "info",
                *self.extra,
            ]
            if self.db_url:
                args += ["--db", self.db_url]
            self.process = Process(args, self.workdir / f"hub-{self.port}.log")
        self.process.start()
        try:
            wait_until(self._ready, START_TIMEOUT, 0.05, f"hub on {self.url} to be ready")
        except AssertionError as error:
            self.process.kill()  # never left running (and never reaped) behind a failed start
            raise AssertionError(f"{error}\n{self.process.log_tail()}") from None
        return self

    def _ready(self) -> bool:
        assert self.process is not None
        if not self.process.alive():
            raise AssertionError(f"hub exited:\n{self.process.log_tail()}")
        try:
            return httpx.get(self.url + "/readyz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def kill(self) -> None:
        """SIGKILL the hub."""
        assert self.process is not None
        self.process.kill()

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM the hub (SIGKILL and fail after `timeout`)."""
        if self.process is not None:
            self.process.terminate(timeout)

    def create_token(self, name: str, role: str) -> str:
        """A token made with `testfleet token create` on this hub's store."""
        args = [
            *cli_command(),
            "token",
            "create",
            "--name",
            name,
            "--role",
            role,
            "--data-dir",
            str(self.workdir / "data"),
        ]
        if self.db_url:
            args += ["--db", self.db_url]
        result = subprocess.run(args, capture_output=True, text=True, timeout=60, check=True)
        return result.stdout.strip()


@dataclass
class Agent:
    """A `testfleet agent` process."""

    workdir: Path
    hub_url: str
    name: str
    slots: int = 2
    labels: dict[str, str] = field(default_factory=dict)
    token: str | None = None
    providers: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    extra: list[str] = field(default_factory=list)
    process: Process | None = None

    @property
    def pid(self) -> int:
        """The agent process's id."""
        assert self.process is not None
        return self.process.pid

    def start(self) -> Agent:
        """Start the agent (it connects on its own)."""
        if self.process is None:
            args = [
                *cli_command(),
                "agent",
                "--hub",
                self.hub_url,
                "--name",
                self.name,
                "--slots",
                str(self.slots),
                "--log-level",
                "info",
                *self.extra,
            ]
            for key, value in self.labels.items():
                args += ["--label", f"{key}={value}"]
            for provider in self.providers:
                args += ["--provider", provider]
            env = {**self.env, **({"TESTFLEET_TOKEN": self.token} if self.token else {})}
            self.process = Process(args, self.workdir / f"agent-{self.name}.log", env)
        self.process.start()
        return self

    def wait_online(self, client: httpx.Client, timeout: float = START_TIMEOUT) -> Agent:
        """Wait until the hub lists this agent online with all its devices."""

        def online() -> bool:
            assert self.process is not None
            if not self.process.alive():
                raise AssertionError(f"agent exited:\n{self.process.log_tail()}")
            agents = client.get("/api/v1/agents").json()["agents"]
            return any(
                a["name"] == self.name and a["state"] == "online" and a["devices"] >= self.slots
                for a in agents
            )

        wait_until(online, timeout, 0.05, f"agent {self.name} online")
        return self

    def kill(self) -> None:
        """SIGKILL the agent."""
        assert self.process is not None
        self.process.kill()

    def stop(self) -> None:
        """SIGTERM the agent."""
        if self.process is not None:
            self.process.terminate()
