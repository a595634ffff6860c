"""The built-in step plugins: cmd, echo and sleep."""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import os
import signal
from typing import ClassVar

from pydantic import Field

from testfleet.protocol.durations import Duration, format_duration
from testfleet.steps.base import LogStream, StepContext, StepParams, StepPlugin, StepResult

_KILL_GRACE = 2.0
_CHUNK = 65536


class EchoParams(StepParams):
    """`echo`: write `text` to the step's log."""

    text: str = Field(max_length=1_000_000)


class EchoStep(StepPlugin):
    """Log a text and pass."""

    name: ClassVar[str] = "echo"
    Params = EchoParams

    async def run(self, ctx: StepContext, params: EchoParams) -> StepResult:
        await ctx.log("stdout", params.text + "\n")
        return StepResult(passed=True, exit_code=0)


class SleepParams(StepParams):
    """`sleep`: wait for `duration` (seconds, or "2s", "1m")."""

    duration: Duration = Field(le=7 * 86400)


class SleepStep(StepPlugin):
    """Wait and pass."""

    name: ClassVar[str] = "sleep"
    Params = SleepParams

    async def run(self, ctx: StepContext, params: SleepParams) -> StepResult:
        await asyncio.sleep(params.duration)
        return StepResult(passed=True, exit_code=0)


class CmdParams(StepParams):
    """`cmd`: run a program (no shell); stdout and stderr go to the log as they come."""

    executable: str = Field(min_length=1)
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict, description="Added to the agent's env.")
    cwd: str | None = Field(
        None, description="Where to run it; relative to the task's working directory."
    )
    timeout: Duration | None = Field(None, gt=0, description="Kill the program after this long.")


class CmdStep(StepPlugin):
    """Run a program; pass on exit code 0."""

    name: ClassVar[str] = "cmd"
    Params = CmdParams

    async def run(self, ctx: StepContext, params: CmdParams) -> StepResult:
        try:
            process = await asyncio.create_subprocess_exec(
                params.executable,
                *params.args,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env={**os.environ, **ctx.env, **params.env},
                cwd=_cwd(ctx, params.cwd),
                start_new_session=True,
            )
        except OSError as error:
            return StepResult(passed=False, error=f"cannot start {params.executable!r}: {error}")
        ctx.processes.started(process.pid)
        try:
            return await _supervise(process, ctx, params)
        finally:
            _end_group(process.pid)
            ctx.processes.ended(process.pid)


async def _supervise(
    process: asyncio.subprocess.Process, ctx: StepContext, params: CmdParams
) -> StepResult:
    """Stream the program's output until it exits, its timeout passes or the step is stopped."""
    assert process.stdout is not None and process.stderr is not None
    pumps = asyncio.gather(
        _pump(process.stdout, "stdout", ctx), _pump(process.stderr, "stderr", ctx)
    )
    try:
        async with asyncio.timeout(params.timeout):
            await pumps
            code = await process.wait()
    except TimeoutError:
        await _terminate(process)
        pumps.cancel()
        assert params.timeout is not None
        return StepResult(
            passed=False,
            exit_code=process.returncode,
            error=f"{params.executable} timed out after {format_duration(params.timeout)}",
        )
    except asyncio.CancelledError:
        await _terminate(process)
        pumps.cancel()
        raise
    return StepResult(
        passed=code == 0,
        exit_code=code,
        error=None if code == 0 else f"{params.executable} exited with code {code}",
    )


def _end_group(pgid: int) -> None:
    """Kill what is left of the step's process group (children it left behind)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _cwd(ctx: StepContext, cwd: str | None) -> str | None:
    """`cwd` inside the task's working directory (an absolute `cwd` stays as it is)."""
    if ctx.workdir is None:
        return cwd
    return str(ctx.workdir / cwd) if cwd else str(ctx.workdir)


async def _pump(stream: asyncio.StreamReader, name: LogStream, ctx: StepContext) -> None:
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    while chunk := await stream.read(_CHUNK):
        text = decoder.decode(chunk)
        if text:
            await ctx.log(name, text)
    tail = decoder.decode(b"", final=True)
    if tail:
        await ctx.log(name, tail)


async def _terminate(process: asyncio.subprocess.Process) -> None:
    """SIGTERM the program's whole process group, then SIGKILL it after a grace period.

    The group is signalled even when the program itself has exited: a child it left in the
    background (`sh -c 'sleep 30 &'`) may still hold the output open.
    """
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        async with asyncio.timeout(_KILL_GRACE):
            await process.wait()
    except TimeoutError:
        pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    await process.wait()
