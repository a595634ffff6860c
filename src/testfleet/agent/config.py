"""An agent's settings."""

from __future__ import annotations

import os
import platform
import socket
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from testfleet.protocol.wire import DeviceSpec


def default_name() -> str:
    """The host name, shortened to what an agent name may hold."""
    name = socket.gethostname().split(".")[0] or "agent"
    return "".join(c if c.isalnum() or c in "._-" else "-" for c in name)[:100]


def default_cache_dir() -> Path:
    """`$XDG_CACHE_HOME/testfleet` (~/.cache/testfleet): plan sources and environments."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "testfleet"


def host_memory() -> int | None:
    """This machine's physical memory in bytes, where the system says."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def host_slots(count: int, labels: dict[str, str]) -> list[DeviceSpec]:
    """`count` host slots: devices of kind 'host' on which steps run as local programs. They
    describe the host (CPUs, memory), which test plan placement reads."""
    system = platform.system().lower()
    host: dict[str, object] = {"platformName": system, "arch": platform.machine()}
    host["cpus"] = os.cpu_count() or 1
    if (memory := host_memory()) is not None:
        host["memory"] = memory
    return [
        DeviceSpec(
            name=f"slot-{i}",
            kind="host",
            capabilities=dict(host),
            labels=dict(labels),
        )
        for i in range(count)
    ]


@dataclass
class AgentConfig:
    """Where the hub is, who this agent is and what it offers."""

    hub_url: str
    name: str = field(default_factory=default_name)
    labels: dict[str, str] = field(default_factory=dict)
    slots: int = 1
    providers: list[str] = field(default_factory=list)
    """Device providers, `NAME[:OPTIONS]` each (see `testfleet.agent.devices`)."""
    token: str | None = None
    reconnect_min: float = 0.2
    reconnect_max: float = 10.0
    """Reconnections back off exponentially from `reconnect_min` to `reconnect_max` seconds,
    each a random time up to that ("full jitter"), so that a fleet whose hub restarted does
    not come back all at once."""
    instance_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    state_dir: Path | None = None
    """Where the agent keeps its state [default: per name and hub, under $XDG_STATE_HOME]."""
    guard_processes: bool = True
    """End steps' processes when the agent dies (a reaper process), and those an earlier
    agent left at start. Off only for agents simulated by the thousand (benchmarks)."""
    work_dir: Path | None = None
    """Where tasks get their working directories [default: TMPDIR/testfleet-agent-NAME]."""
    keep_work: bool = False
    """Keep each task's working directory after it ends (by default it is removed)."""

    cache_dir: Path = field(default_factory=default_cache_dir)
    """Test plan sources, environments and instance work (`--cache-dir`)."""

    @property
    def work_root(self) -> Path:
        """The directory holding the tasks' working directories."""
        return self.work_dir or Path(tempfile.gettempdir()) / f"testfleet-agent-{self.name}"

    @property
    def http_url(self) -> str:
        """The hub's base URL for HTTP (artifact uploads)."""
        base = self.hub_url.rstrip("/")
        if base.startswith("wss://"):
            return "https://" + base[len("wss://") :]
        if base.startswith("ws://"):
            return "http://" + base[len("ws://") :]
        return base

    @property
    def websocket_url(self) -> str:
        """The hub's agent endpoint as a ws:// or wss:// URL."""
        base = self.hub_url.rstrip("/")
        if base.startswith("https://"):
            base = "wss://" + base[len("https://") :]
        elif base.startswith("http://"):
            base = "ws://" + base[len("http://") :]
        elif not base.startswith(("ws://", "wss://")):
            raise ValueError(f"hub URL {self.hub_url!r} must start with http:// or https://")
        return base + "/api/v1/agents/connect"
