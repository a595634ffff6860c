"""The environment-variable form of the probe: what to set so that a Python process, and
every Python subprocess it starts, runs with a probe."""

from __future__ import annotations

import os
from pathlib import Path

from testfleet.probe.config import ProbeConfig

BOOTSTRAP_DIR = Path(__file__).resolve().parent / "bootstrap"
"""Holds the `sitecustomize` that starts the probe; put it first on PYTHONPATH."""


def probe_environment(config: ProbeConfig, base: dict[str, str] | None = None) -> dict[str, str]:
    """`base` (default: this process's environment) with the probe's variables and PYTHONPATH."""
    env = dict(os.environ if base is None else base)
    env.update(config.to_env())
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    if str(BOOTSTRAP_DIR) not in paths:
        paths.insert(0, str(BOOTSTRAP_DIR))
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env
