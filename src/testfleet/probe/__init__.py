"""The probe: an in-process agent inside a Python application under test.

It measures with coverage.py and speaks Drill4J's session protocol with the hub. Start it
without touching the application (`testfleet probe --hub URL --app NAME --build V -- python
app.py`), from the environment (see `testfleet.probe.config`), or from code:

    from testfleet import probe
    probe.start(hub_url="http://127.0.0.1:8470", app="shop", build="1.4.0")

This part imports only `testfleet.protocol` (and its own modules): it runs on machines
without the hub's dependencies.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

from testfleet.probe.config import ProbeConfig, ProbeConfigError

if TYPE_CHECKING:
    from testfleet.probe.agent import Probe

__all__ = ["Probe", "ProbeConfig", "ProbeConfigError", "current", "start", "start_from_env"]

_current: Probe | None = None
_lock = threading.Lock()


def current() -> Probe | None:
    """The probe running in this process, if any."""
    return _current


def start(
    hub_url: str,
    app: str,
    build: str,
    *,
    parent_build: str | None = None,
    token: str | None = None,
    sources: tuple[Path, ...] = (),
    base: Path | None = None,
    agent_id: str | None = None,
) -> Probe:
    """Start this process's probe (once; a second call returns the first)."""
    config = ProbeConfig(
        hub_url=hub_url,
        app=app,
        build=build,
        parent_build=parent_build,
        token=token,
        sources=sources,
        base=base or Path.cwd(),
        agent_id=agent_id,
    )
    return _start(config)


def start_from_env() -> Probe | None:
    """Start the probe the environment describes (TESTFLEET_PROBE_*); None if none."""
    config = ProbeConfig.from_env()
    return _start(config) if config is not None else None


def _start(config: ProbeConfig) -> Probe:
    # Imported here: coverage.py and the probe's machinery are not loaded by the commands and
    # the pytest plugin that only import this package's configuration.
    from testfleet.probe.agent import Probe

    global _current
    with _lock:
        if _current is None:
            _current = Probe(config).start()
        return _current


def __getattr__(name: str) -> object:
    """`testfleet.probe.Probe`, loaded when first asked for."""
    if name == "Probe":
        from testfleet.probe.agent import Probe

        return Probe
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
