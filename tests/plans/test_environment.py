"""The agent's plan cache: sources unpacked once by hash, a venv per requirements hash that
sees the agent's packages (so `testfleet.sdk` imports), made once."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from testfleet.steps.plan.archive import zip_directory
from testfleet.steps.plan.environment import PlanCache, requirements_hash

pytestmark = pytest.mark.anyio


async def test_a_plan_without_requirements_runs_on_the_agents_interpreter(tmp_path: Path) -> None:
    logged: list[str] = []

    async def log(text: str) -> None:
        logged.append(text)

    assert await PlanCache(tmp_path).python("  \n", log) == sys.executable
    assert logged == []


async def test_sources_are_fetched_once_per_hash(tmp_path: Path) -> None:
    plan = tmp_path / "plan"
    plan.mkdir()
    (plan / "main.py").write_text("print('hi')\n")
    fetched: list[str] = []

    async def download(content_hash: str) -> bytes:
        fetched.append(content_hash)
        return zip_directory(plan)

    cache = PlanCache(tmp_path / "cache")
    first = await cache.source("a" * 64, download)
    again = await cache.source("a" * 64, download)
    assert first == again and (first / "main.py").read_text() == "print('hi')\n"
    assert fetched == ["a" * 64]


async def test_a_venv_per_requirements_sees_the_agents_packages(tmp_path: Path) -> None:
    logged: list[str] = []

    async def log(text: str) -> None:
        logged.append(text)

    cache = PlanCache(tmp_path)
    requirements = "PyYAML\n"  # installed beside the agent: pip finds it satisfied, offline
    python = await cache.python(requirements, log)
    assert python == str(tmp_path / "envs" / requirements_hash(requirements) / "bin" / "python")
    check = "import yaml, testfleet.sdk, sys; print(sys.prefix)"
    result = await asyncio.to_thread(
        subprocess.run, [python, "-c", check], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(tmp_path / "envs" / requirements_hash(requirements))
    assert await cache.python(requirements, log) == python  # made once
    assert sum("installing" in line for line in logged) == 1
    assert not list((tmp_path / "envs").glob(".*"))  # no half-made environment left behind
