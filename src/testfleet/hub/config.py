"""The hub's settings, apart from the server that runs it (as uvicorn keeps Config apart)."""

from __future__ import annotations

import ipaddress
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path

from testfleet.steps.plan.archive import Limits
from testfleet.store.db import sqlite_url

DEFAULT_PORT = 8470
GIB = 1024**3

SSE_KEEPALIVE = 15.0
"""Seconds of silence after which a followed event stream gets a `: keep-alive` comment, so
that proxies and load balancers with idle timeouts keep it open."""


def default_data_dir() -> Path:
    """`$TESTFLEET_DATA_DIR`, else `$XDG_DATA_HOME/testfleet` (~/.local/share/testfleet)."""
    if env := os.environ.get("TESTFLEET_DATA_DIR"):
        return Path(env)
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "testfleet"


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and `localhost`."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass
class HubConfig:
    """Everything the hub needs to know; the CLI fills it from flags."""

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    db_url: str | None = None
    data_dir: Path = field(default_factory=default_data_dir)
    server_id: str | None = None
    auth: bool | None = None
    insecure_no_auth: bool = False
    event_timeout: float = 3.0
    heartbeat_interval: float = 1.0
    agent_timeout: float = 5.0
    hub_timeout: float = 30.0
    """Seconds a hub may be silent (its heartbeat row unwritten) before the other hubs
    declare its agents lost; it beats every tenth of that."""
    device_lease_ttl: float = 60.0
    job_lease_ttl: float = 15.0
    stop_grace: float = 10.0
    max_running_jobs: int = 2000
    metrics_public: bool = False
    """With auth on, serve /metrics without a token."""
    sse_keepalive: float = SSE_KEEPALIVE
    """No command-line flag: tests that run the hub in-process set it shorter."""
    artifact_dir: Path | None = None
    max_artifact_size: int = 5 * GIB
    max_job_artifacts: int = 20 * GIB
    retain_days: float | None = None
    """Finished jobs older than this are deleted (None: kept until deleted by hand)."""
    retain_tags: dict[str, float] = field(default_factory=dict)
    """Per tag: a job with such tags is kept the longest of their days."""
    webhook_retry_for: float = 86400.0
    """Seconds a webhook delivery is retried for before it is given up."""

    session_request_timeout: float = 300.0
    """Seconds a new WebDriver session may wait in the queue for a device."""
    session_idle_timeout: float = 60.0
    """Seconds a WebDriver session may stay idle when the client names no newCommandTimeout."""
    session_idle_max: float = 3600.0
    """The longest newCommandTimeout a client may ask for."""
    session_create_timeout: float = 120.0
    """Seconds a node may take to create a driver session."""
    session_history_days: float = 30.0
    """Days an ended WebDriver session (its commands, its screenshot) is kept."""

    developer_timeout: float = 300.0
    """Seconds a developer-mode session lives with none of its developer's tabs open; then
    the developer is gone: the session ends and the job's paused tasks go on."""

    local_agent: str | None = None
    """The agent `local:exec` runs plan instances on (`testfleet up` names its own)."""
    plan_limits: Limits = field(default_factory=Limits)
    """How large a plan archive may be, packed and unpacked, and how well it may compress."""

    @property
    def artifact_root(self) -> Path:
        """Where artifacts are stored: `artifact_dir`, or `artifacts` in the data directory."""
        return self.artifact_dir or self.data_dir / "artifacts"

    @property
    def database_url(self) -> str:
        """The store's URL: `db_url`, or the SQLite file in the data directory."""
        return self.db_url or sqlite_url(self.data_dir)

    @property
    def auth_enabled(self) -> bool:
        """Auth is on when asked for, and by default on any address but loopback."""
        return self.auth if self.auth is not None else not is_loopback(self.host)

    @property
    def effective_server_id(self) -> str:
        """A stable id for this hub: given, or host name and port."""
        return self.server_id or f"{socket.gethostname()}:{self.port}"

    def check(self) -> None:
        """Refuse settings that are unsafe or make no sense, with the reason."""
        if not is_loopback(self.host) and not self.auth_enabled and not self.insecure_no_auth:
            raise ValueError(
                f"refusing to serve on {self.host} without auth: anyone who can reach it could "
                "run commands on your agents. Use --auth (and `testfleet token create`), or "
                "--insecure-no-auth if the network is trusted."
            )
        for name in (
            "event_timeout",
            "heartbeat_interval",
            "agent_timeout",
            "hub_timeout",
            "device_lease_ttl",
            "job_lease_ttl",
            "sse_keepalive",
            "session_request_timeout",
            "session_idle_timeout",
            "session_idle_max",
            "session_create_timeout",
            "session_history_days",
            "developer_timeout",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name.replace('_', '-')} must be positive")
        if self.max_artifact_size <= 0 or self.max_job_artifacts <= 0:
            raise ValueError("artifact size limits must be positive")
        if self.retain_days is not None and self.retain_days <= 0:
            raise ValueError("retain-days must be positive")
        for tag, days in self.retain_tags.items():
            if days <= 0:
                raise ValueError(f"retain-tag {tag}: the days must be positive")
        if self.agent_timeout <= self.heartbeat_interval:
            raise ValueError("agent-timeout must be longer than heartbeat-interval")
