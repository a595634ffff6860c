"""An agent's settings."""

from __future__ import annotations

import os
import platform
import socket
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
    token: str | None = None
    reconnect_min: float = 0.2
    reconnect_max: float = 3.0
    instance_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    cache_dir: Path = field(default_factory=default_cache_dir)

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
