"""An agent's cache of plan sources and Python environments, shared by its tasks.

Sources are downloaded once per content hash and unpacked (checked again) into
`sources/<hash>`. A plan with requirements gets a virtual environment per requirements hash in
`envs/<hash>`, made by the agent's own pip from PyPI; it sees the agent's packages too (for
`testfleet.sdk`), its own requirements first. A plan without requirements runs on the agent's
interpreter. Work on one entry is locked across processes, and every entry appears whole
(made under a temporary name, then renamed) or not at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import os
import shutil
import site
import sys
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import IO

from testfleet.steps.plan.archive import extract

PIP_TIMEOUT = 900.0
Download = Callable[[str], Awaitable[bytes]]
Log = Callable[[str], Awaitable[None]]


class PlanEnvironmentError(Exception):
    """The plan's environment could not be made; the message says why."""


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _lock_file(path: Path) -> IO[str]:
    """Open and lock `path` (waiting for another process holding it); close to unlock."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = path.open("a")
    fcntl.flock(handle, fcntl.LOCK_EX)
    return handle


def requirements_hash(requirements: str) -> str:
    """The environment's name: the requirements and the interpreter they are for."""
    lines = sorted(line.strip() for line in requirements.splitlines() if line.strip())
    made_of = "\n".join([sys.version, sys.executable, *lines])
    return hashlib.sha256(made_of.encode()).hexdigest()


class PlanCache:
    """Sources and environments under `root`."""

    def __init__(self, root: Path) -> None:
        self.root = root

    async def source(self, content_hash: str, download: Download) -> Path:
        """The unpacked archive with this content hash, downloaded if not here yet."""
        target = self.root / "sources" / content_hash
        if target.is_dir():
            return target
        data = await download(content_hash)
        await asyncio.to_thread(self._unpack, data, target)
        return target

    def _unpack(self, data: bytes, target: Path) -> None:
        with _locked(target.with_name(target.name + ".lock")):
            if target.is_dir():
                return
            staging = target.with_name(f".{target.name}.{uuid.uuid4().hex}")
            try:
                extract(data, staging)
                staging.rename(target)
            finally:
                shutil.rmtree(staging, ignore_errors=True)

    async def python(self, requirements: str, log: Log) -> str:
        """The interpreter to run the plan with: the agent's own, or a venv with the
        requirements installed."""
        if not requirements.strip():
            return sys.executable
        target = self.root / "envs" / requirements_hash(requirements)
        python = target / "bin" / "python"
        if python.exists():
            return str(python)
        handle = await asyncio.to_thread(_lock_file, target.with_name(target.name + ".lock"))
        try:
            if not python.exists():
                await self._make(target, requirements, log)
        finally:
            handle.close()  # closing the file releases the lock
        return str(python)

    async def _make(self, target: Path, requirements: str, log: Log) -> None:
        staging = target.with_name(f".{target.name}.{uuid.uuid4().hex}")
        try:
            await _run(log, sys.executable, "-m", "venv", "--without-pip", str(staging))
            _see_agent_packages(staging)
            listed = staging / "requirements.txt"
            listed.write_text(requirements)
            await log(f"installing the plan's requirements into {target}\n")
            await _run(
                log,
                sys.executable,
                "-m",
                "pip",
                "--python",
                str(staging / "bin" / "python"),
                "install",
                "--no-input",
                "--disable-pip-version-check",
                "--quiet",
                "-r",
                str(listed),
            )
            staging.rename(target)
        finally:
            await asyncio.to_thread(shutil.rmtree, staging, True)


def _see_agent_packages(venv: Path) -> None:
    """Let the venv import what the agent can (after its own packages)."""
    libs = list((venv / "lib").glob("python*/site-packages"))
    if not libs:
        raise PlanEnvironmentError(f"{venv} has no site-packages")
    dirs = [d for d in [*site.getsitepackages(), site.getusersitepackages()] if os.path.isdir(d)]
    lines = [f"import site; site.addsitedir({d!r})" for d in dirs]
    (libs[0] / "_testfleet_agent.pth").write_text("\n".join(lines) + "\n")


async def _run(log: Log, *command: str) -> None:
    process = await asyncio.create_subprocess_exec(
        *command,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        async with asyncio.timeout(PIP_TIMEOUT):
            output, _ = await process.communicate()
    except TimeoutError:
        process.kill()
        await process.wait()
        raise PlanEnvironmentError(f"{command[2]} took longer than {PIP_TIMEOUT:g} s") from None
    text = output.decode(errors="replace")
    if text:
        await log(text)
    if process.returncode != 0:
        tail = text[-2000:]
        raise PlanEnvironmentError(f"{' '.join(command[:4])} failed ({process.returncode}): {tail}")
