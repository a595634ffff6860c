"""An agent's share of a run: every instance a process of its own, all started together,
each watched until it ends or the run's timeout; a crash keeps its exit code and stderr tail.

Each instance gets a directory `<work>/<seq>` with `outputs/` (TEST_OUTPUTS_PATH; its stdout
and stderr go to `stdout.log` and `stderr.log` there) and `temp/` (TEST_TEMP_PATH). The SDK
writes the outcome the case function reached to TESTFLEET_OUTCOME_PATH; no outcome there means
the process crashed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from testfleet.protocol.manifest import format_param
from testfleet.steps.plan.params import GroupSpec, InstanceSpec, PlanStepParams

KILL_GRACE = 2.0
STDERR_TAIL = 2000
NICENESS = 10
"""Instances run at a lower priority than the agent (and a hub on the same machine): a
hundred instances starting at once must not starve the heartbeats that keep the agent alive."""


@dataclass
class Ended:
    """How one instance ended."""

    spec: InstanceSpec
    state: str
    exit_code: int | None
    error: str | None


@dataclass(frozen=True)
class Launch:
    """What every instance of the share is started with."""

    python: str
    entry: Path
    work: Path
    sync_url: str
    token: str | None
    manifest: Path
    extra_path: list[str]


def instance_env(
    params: PlanStepParams, spec: InstanceSpec, group: GroupSpec, launch: Launch
) -> dict[str, str]:
    """The run environment of one instance (Testground's variables and testfleet's own)."""
    home = launch.work / str(spec.seq)
    host = launch.sync_url.split("://", 1)[-1].split("/", 1)[0]
    host_name, _, port = host.rpartition(":")
    env = {
        "TEST_PLAN": params.plan,
        "TEST_CASE": params.case,
        "TEST_RUN": params.run_id,
        "TEST_INSTANCE_COUNT": str(params.total),
        "TEST_GROUP_ID": group.id,
        "TEST_GROUP_INSTANCE_COUNT": str(group.count),
        "TEST_INSTANCE_PARAMS": "|".join(f"{k}={format_param(v)}" for k, v in group.params.items()),
        "TEST_OUTPUTS_PATH": str(home / "outputs"),
        "TEST_TEMP_PATH": str(home / "temp"),
        "TEST_START_TIME": params.start_time,
        "TEST_SIDECAR": "false",
        "SYNC_SERVICE_HOST": host_name or host,
        "SYNC_SERVICE_PORT": port,
        "TESTFLEET_SYNC_URL": launch.sync_url,
        "TESTFLEET_INSTANCE_PARAMS_JSON": json.dumps(group.params),
        "TESTFLEET_GLOBAL_SEQ": str(spec.seq),
        "TESTFLEET_GROUP_SEQ": str(spec.group_seq),
        "TESTFLEET_OUTCOME_PATH": str(home / "outcome.json"),
        "TESTFLEET_PLAN_MANIFEST": str(launch.manifest),
        "PYTHONUNBUFFERED": "1",
    }
    if launch.token:
        env["TESTFLEET_TOKEN"] = launch.token
    path = [*launch.extra_path, os.environ.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in path if p)
    return env


def _tail(path: Path) -> str:
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - STDERR_TAIL))
            return handle.read().decode(errors="replace")
    except OSError:
        return ""


def _reported(home: Path) -> tuple[str, str | None] | None:
    try:
        data = json.loads((home / "outcome.json").read_text())
    except (OSError, ValueError):
        return None
    outcome = data.get("outcome") if isinstance(data, dict) else None
    if outcome not in ("success", "failure", "crash"):
        return None
    error = data.get("error")
    return outcome, str(error) if error else None


async def _stop(process: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        async with asyncio.timeout(KILL_GRACE):
            await process.wait()
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        await process.wait()


async def run_instance(
    params: PlanStepParams,
    spec: InstanceSpec,
    group: GroupSpec,
    launch: Launch,
    started: Callable[[InstanceSpec], None],
) -> Ended:
    """Run one instance to its end (or the run's timeout); it is stopped if cancelled."""
    home = launch.work / str(spec.seq)
    outputs = home / "outputs"
    for directory in (outputs, home / "temp"):
        directory.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **instance_env(params, spec, group, launch)}
    with (outputs / "stdout.log").open("wb") as out, (outputs / "stderr.log").open("wb") as err:
        try:
            process = await asyncio.create_subprocess_exec(
                launch.python,
                str(launch.entry),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                cwd=home / "temp",
                env=env,
                start_new_session=True,
            )
        except OSError as problem:
            return Ended(spec, "crash", None, f"cannot start {launch.python}: {problem}")
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, process.pid, NICENESS)
    started(spec)
    try:
        async with asyncio.timeout(params.timeout):
            code = await process.wait()
    except TimeoutError:
        await _stop(process)
        return Ended(spec, "failure", process.returncode, f"timed out after {params.timeout:g} s")
    except asyncio.CancelledError:
        await asyncio.shield(_stop(process))
        raise
    reported = _reported(home)
    if reported is None:
        tail = _tail(outputs / "stderr.log").strip()
        how = f"killed by signal {-code}" if code < 0 else f"exited with code {code}"
        message = f"crashed: {how} without recording an outcome"
        return Ended(spec, "crash", code, message + (f"\nstderr tail:\n{tail}" if tail else ""))
    outcome, error = reported
    if outcome == "crash":
        tail = _tail(outputs / "stderr.log").strip()
        error = f"crashed: {error}" + (f"\nstderr tail:\n{tail}" if tail else "")
    return Ended(spec, outcome, code, error)


def write_outcome(work: Path, ended: Ended) -> None:
    """Keep how the instance ended in its outputs (`outcome.json`)."""
    outputs = work / str(ended.spec.seq) / "outputs"
    outputs.mkdir(parents=True, exist_ok=True)
    record = {
        "seq": ended.spec.seq,
        "group": ended.spec.group,
        "group_seq": ended.spec.group_seq,
        "outcome": ended.state,
        "exit_code": ended.exit_code,
        "error": ended.error,
    }
    (outputs / "outcome.json").write_text(json.dumps(record, indent=2) + "\n")
