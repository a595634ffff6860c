"""The probe's settings, from arguments or from the environment (which reaches subprocesses)."""

from __future__ import annotations

import os
import re
import socket
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from testfleet.protocol.coverage import PROBE_WS_PATH

ENV_HUB = "TESTFLEET_PROBE_HUB"
ENV_APP = "TESTFLEET_PROBE_APP"
ENV_BUILD = "TESTFLEET_PROBE_BUILD"
ENV_PARENT = "TESTFLEET_PROBE_PARENT_BUILD"
ENV_SOURCE = "TESTFLEET_PROBE_SOURCE"
ENV_BASE = "TESTFLEET_PROBE_BASE"
ENV_TOKEN = "TESTFLEET_PROBE_TOKEN"
ENV_ID = "TESTFLEET_PROBE_ID"
ENV_NO_SOURCE = "TESTFLEET_PROBE_NO_SOURCE"
ENV_BRANCH = "TESTFLEET_PROBE_BRANCH"
REQUIRED = (ENV_HUB, ENV_APP, ENV_BUILD)
NAME = re.compile(r"[A-Za-z0-9][\w.:@+-]{0,199}")
"""What an application or build name may be (the wire's `Name`)."""


class ProbeConfigError(ValueError):
    """The probe's settings are incomplete or wrong; the message says which."""


@dataclass(frozen=True)
class ProbeConfig:
    """Where the hub is, what the application and build are, which code to measure."""

    hub_url: str
    app: str
    build: str
    parent_build: str | None = None
    token: str | None = None
    sources: tuple[Path, ...] = ()
    base: Path = field(default_factory=Path.cwd)
    agent_id: str | None = None
    send_source: bool = True
    branch: bool = False

    def __post_init__(self) -> None:
        url = httpx.URL(self.hub_url.strip())
        if url.scheme not in ("http", "https", "ws", "wss") or not url.host:
            raise ProbeConfigError(
                f"the hub URL must look like http://host:port, got {self.hub_url!r}"
            )
        names = {"app": self.app, "build": self.build, "parent build": self.parent_build}
        for what, value in names.items():
            if value is not None and not NAME.fullmatch(value):
                raise ProbeConfigError(
                    f"{what} {value!r}: use 1-200 letters, digits and . _ - : @ +, "
                    "starting with a letter or digit"
                )

    @property
    def roots(self) -> tuple[Path, ...]:
        """The folders (or files) whose modules are measured: `sources`, else `base`."""
        return self.sources or (self.base,)

    @property
    def websocket_url(self) -> str:
        """The hub's probe endpoint."""
        url = httpx.URL(self.hub_url.strip())
        scheme = {"http": "ws", "https": "wss"}.get(url.scheme, url.scheme)
        return str(url.copy_with(scheme=scheme, path=PROBE_WS_PATH, query=None))

    def probe_id(self) -> str:
        """This process's probe id: given, else app, host and process id."""
        prefix = self.agent_id or f"{self.app}-{socket.gethostname()}"
        return f"{prefix}-{os.getpid()}"[:200]

    def to_env(self) -> dict[str, str]:
        """The environment that starts the same probe in a Python (sub)process."""
        env = {
            ENV_HUB: self.hub_url,
            ENV_APP: self.app,
            ENV_BUILD: self.build,
            ENV_BASE: str(self.base.resolve()),
        }
        if self.parent_build:
            env[ENV_PARENT] = self.parent_build
        if self.token:
            env[ENV_TOKEN] = self.token
        if self.sources:
            env[ENV_SOURCE] = os.pathsep.join(str(p.resolve()) for p in self.sources)
        if self.agent_id:
            env[ENV_ID] = self.agent_id
        if not self.send_source:
            env[ENV_NO_SOURCE] = "1"
        if self.branch:
            env[ENV_BRANCH] = "1"
        return env

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> ProbeConfig | None:
        """The probe the environment asks for; None when it asks for none."""
        env = os.environ if environ is None else environ
        if not any(env.get(name) for name in REQUIRED):
            return None
        missing = [name for name in REQUIRED if not env.get(name)]
        if missing:
            raise ProbeConfigError(
                f"set {', '.join(missing)} too (the probe needs all of {REQUIRED})"
            )
        sources = tuple(Path(p) for p in env.get(ENV_SOURCE, "").split(os.pathsep) if p)
        return cls(
            hub_url=env[ENV_HUB],
            app=env[ENV_APP],
            build=env[ENV_BUILD],
            parent_build=env.get(ENV_PARENT) or None,
            token=env.get(ENV_TOKEN) or env.get("TESTFLEET_TOKEN") or None,
            sources=sources,
            base=Path(env.get(ENV_BASE) or Path.cwd()),
            agent_id=env.get(ENV_ID) or None,
            send_source=not env.get(ENV_NO_SOURCE),
            branch=bool(env.get(ENV_BRANCH)),
        )
