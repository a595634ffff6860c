"""The built-in step plugins, run for real through a StepContext, and the plugin registry."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from testfleet.steps.base import LogStream, StepContext, StepResult
from testfleet.steps.builtin import (
    CmdParams,
    CmdStep,
    EchoParams,
    EchoStep,
    SleepParams,
    SleepStep,
)
from testfleet.steps.registry import (
    ParamError,
    UnknownPlugin,
    get_plugin,
    plugins,
    validate_params,
)


class Recorder:
    """A StepContext whose log chunks are kept."""

    def __init__(self) -> None:
        self.chunks: list[tuple[LogStream, str]] = []

    async def log(self, stream: LogStream, text: str) -> None:
        """Keep one chunk."""
        self.chunks.append((stream, text))

    def context(self) -> StepContext:
        """A context logging here."""
        return StepContext(job_id=1, task_id=2, step_index=0, device_name="slot-0", log=self.log)

    def text(self, stream: LogStream) -> str:
        """Everything logged to `stream`."""
        return "".join(text for s, text in self.chunks if s == stream)


def run_cmd(executable: str, *args: str, **params: Any) -> tuple[StepResult, Recorder]:
    """Run the cmd plugin to its end; returns its result and log."""
    recorder = Recorder()
    step_params = CmdParams.model_validate({"executable": executable, "args": list(args), **params})
    return asyncio.run(CmdStep().run(recorder.context(), step_params)), recorder


def python(code: str, **params: Any) -> tuple[StepResult, Recorder]:
    """Run `python -c code` through the cmd plugin."""
    return run_cmd(sys.executable, "-c", code, **params)


def gone(pid: int) -> bool:
    """True once `pid` has exited (a zombie nobody reaped counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def wait_gone(pids: list[int], timeout: float = 3.0) -> list[int]:
    """Wait up to `timeout` for `pids` to exit; returns the ones still alive."""
    deadline = time.monotonic() + timeout
    while alive := [pid for pid in pids if not gone(pid)]:
        if time.monotonic() > deadline:
            return alive
        time.sleep(0.02)
    return []


def kill_quietly(pids: list[int]) -> None:
    """SIGKILL whatever of `pids` still runs (cleanup after a failed check)."""
    for pid in pids:
        if not gone(pid):
            os.kill(pid, signal.SIGKILL)


def read_pids(path: Path, count: int) -> list[int]:
    """Wait (up to 4 s) for `path` to hold `count` pids, one a line."""
    for _ in range(200):
        if path.exists() and len(lines := path.read_text().split()) == count:
            return [int(line) for line in lines]
        time.sleep(0.02)
    raise AssertionError(f"{path} never held {count} pids")


# ---- echo and sleep -----------------------------------------------------------------------------


def test_echo_logs_its_text() -> None:
    recorder = Recorder()
    result = asyncio.run(EchoStep().run(recorder.context(), EchoParams(text="hi there")))
    assert result == StepResult(passed=True, exit_code=0)
    assert recorder.chunks == [("stdout", "hi there\n")]


def test_sleep_waits() -> None:
    params = SleepParams.model_validate({"duration": "200ms"})
    began = time.monotonic()
    result = asyncio.run(SleepStep().run(Recorder().context(), params))
    elapsed = time.monotonic() - began
    assert result.passed
    assert 0.19 <= elapsed < 2


def test_sleep_params() -> None:
    assert SleepParams.model_validate({"duration": "1m"}).duration == 60.0
    for bad in ({"duration": "8d"}, {"duration": "soon"}, {}, {"duration": 1, "x": 2}):
        problems = validate_params("sleep", bad)
        assert isinstance(problems, list) and problems


# ---- cmd ----------------------------------------------------------------------------------------


def test_cmd_passes_on_exit_code_zero() -> None:
    result, _ = python("pass")
    assert result == StepResult(passed=True, exit_code=0, error=None)


def test_cmd_fails_with_the_exit_code() -> None:
    result, _ = python("raise SystemExit(3)")
    assert (result.passed, result.exit_code) == (False, 3)
    assert result.error is not None and "exited with code 3" in result.error


def test_cmd_streams_stdout_and_stderr_to_their_streams() -> None:
    code = (
        "import sys\n"
        "print('out 1', flush=True)\n"
        "print('err 1', file=sys.stderr, flush=True)\n"
        "print('out 2')\n"
    )
    result, recorder = python(code)
    assert result.passed
    assert recorder.text("stdout") == "out 1\nout 2\n"
    assert recorder.text("stderr") == "err 1\n"
    assert {stream for stream, _ in recorder.chunks} == {"stdout", "stderr"}


def test_cmd_streams_output_as_it_comes() -> None:
    """The first line arrives while the program still runs, not only at its end."""
    seen_at: list[float] = []
    recorder = Recorder()

    async def log(stream: LogStream, text: str) -> None:
        seen_at.append(time.monotonic())
        await recorder.log(stream, text)

    async def main() -> float:
        context = StepContext(job_id=1, task_id=2, step_index=0, device_name="d", log=log)
        params = CmdParams(
            executable=sys.executable,
            args=["-c", "import time; print('early', flush=True); time.sleep(0.6)"],
        )
        began = time.monotonic()
        await CmdStep().run(context, params)
        return began

    began = asyncio.run(main())
    assert recorder.text("stdout") == "early\n"
    assert seen_at[0] - began < 0.5


def test_cmd_applies_env_and_cwd(tmp_path: Path) -> None:
    code = "import os; print(os.environ['TF_X'], os.environ['PATH'] != '', os.getcwd())"
    result, recorder = python(code, env={"TF_X": "set"}, cwd=str(tmp_path))
    assert result.passed
    assert recorder.text("stdout") == f"set True {tmp_path}\n"


def test_cmd_has_no_stdin() -> None:
    result, recorder = python("import sys; print(repr(sys.stdin.read()))")
    assert result.passed and recorder.text("stdout") == "''\n"


def test_a_missing_executable_fails_clearly() -> None:
    result, recorder = run_cmd("/no/such/program", "x")
    assert not result.passed
    assert result.exit_code is None
    assert result.error is not None and "cannot start '/no/such/program'" in result.error
    assert recorder.chunks == []


def test_a_missing_cwd_fails_clearly(tmp_path: Path) -> None:
    result, _ = run_cmd("true", cwd=str(tmp_path / "nope"))
    assert not result.passed
    assert result.error is not None and "cannot start 'true'" in result.error


def test_the_timeout_param_kills_a_long_program() -> None:
    began = time.monotonic()
    result, _ = run_cmd("sleep", "30", timeout="1s")
    elapsed = time.monotonic() - began
    assert 0.9 <= elapsed < 3
    assert not result.passed
    assert result.error == "sleep timed out after 1s"
    assert result.exit_code == -signal.SIGTERM


def test_the_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "pids"
    code = (
        "import os, subprocess, time\n"
        "child = subprocess.Popen(['sleep', '30'])\n"
        f"open({str(pid_file)!r}, 'w').write(f'{{os.getpid()}}\\n{{child.pid}}\\n')\n"
        "child.wait()\n"
    )
    began = time.monotonic()
    result, _ = python(code, timeout="1s")
    assert time.monotonic() - began < 4
    assert not result.passed and result.error is not None and "timed out" in result.error
    pids = [int(line) for line in pid_file.read_text().split()]
    try:
        assert wait_gone(pids) == []
    finally:
        kill_quietly(pids)


def test_the_timeout_kills_children_that_outlive_their_parent() -> None:
    recorder = Recorder()
    params = CmdParams(executable="sh", args=["-c", "sleep 30 & echo $!"], timeout="1s")
    survivors: list[int] = []

    async def main() -> StepResult:
        result = await CmdStep().run(recorder.context(), params)
        pids = [int(recorder.text("stdout"))]
        survivors.extend(await asyncio.to_thread(wait_gone, pids, 1.0))
        kill_quietly(survivors)
        await asyncio.sleep(0.3)  # let the pipes close while the loop still runs
        return result

    result = asyncio.run(main())
    assert result.error is not None and "timed out" in result.error
    assert survivors == []


def test_cancelling_cmd_kills_its_process_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "pids"
    code = (
        "import os, subprocess, time\n"
        "child = subprocess.Popen(['sleep', '30'])\n"
        f"open({str(pid_file)!r}, 'w').write(f'{{os.getpid()}}\\n{{child.pid}}\\n')\n"
        "time.sleep(30)\n"
    )
    pids: list[int] = []

    async def main() -> None:
        params = CmdParams(executable=sys.executable, args=["-c", code])
        task = asyncio.create_task(CmdStep().run(Recorder().context(), params))
        pids.extend(await asyncio.to_thread(read_pids, pid_file, 2))
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    began = time.monotonic()
    asyncio.run(main())
    try:
        assert wait_gone(pids) == []
        assert time.monotonic() - began < 5
    finally:
        kill_quietly(pids)


def test_a_program_ignoring_sigterm_is_killed_after_the_grace_period() -> None:
    code = (
        "import signal, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print('ready', flush=True)\n"
        "time.sleep(30)\n"
    )
    began = time.monotonic()
    result, recorder = python(code, timeout="0.5s")
    assert recorder.text("stdout") == "ready\n"
    assert result.exit_code == -signal.SIGKILL
    assert 2.4 <= time.monotonic() - began < 5  # 0.5 s, then a 2 s grace


def test_output_that_is_not_utf8_does_not_crash() -> None:
    code = (
        "import sys\n"
        "sys.stdout.buffer.write(b'a\\xff\\xfeb\\n')\n"
        "sys.stderr.buffer.write(b'\\x80')\n"
    )
    result, recorder = python(code)
    assert result.passed
    assert recorder.text("stdout") == "a\ufffd\ufffdb\n"
    assert recorder.text("stderr") == "\ufffd"


def test_a_character_split_across_reads_is_decoded_whole() -> None:
    # 65535 bytes, then a 2-byte character across the plugin's 64 KiB read size.
    code = "import sys; sys.stdout.buffer.write(b'a' * 65535 + 'é'.encode() + b'z' * 10)"
    result, recorder = python(code)
    assert result.passed
    assert recorder.text("stdout") == "a" * 65535 + "é" + "z" * 10


def test_cmd_params() -> None:
    params = CmdParams.model_validate({"executable": "ls", "timeout": "1m"})
    assert (params.args, params.env, params.cwd, params.timeout) == ([], {}, None, 60.0)
    problems = validate_params("cmd", {"executable": "", "args": "not a list", "timeout": 0})
    assert isinstance(problems, list)
    assert {p.path for p in problems} == {("executable",), ("args",), ("timeout",)}


# ---- registry -----------------------------------------------------------------------------------


def test_the_builtins_are_registered() -> None:
    found = plugins()
    assert {"cmd", "echo", "sleep"} <= set(found)
    assert (found["cmd"], found["echo"], found["sleep"]) == (CmdStep, EchoStep, SleepStep)
    assert get_plugin("echo") is EchoStep


def test_an_unknown_plugin_lists_the_known_ones() -> None:
    with pytest.raises(UnknownPlugin) as caught:
        get_plugin("nope")
    error = caught.value
    assert error.name == "nope"
    assert {"cmd", "echo", "sleep"} <= set(error.known)
    assert error.known == sorted(error.known)
    assert str(error).startswith("unknown step plugin 'nope'; known plugins: ")
    assert all(name in str(error) for name in ("cmd", "echo", "sleep"))
    with pytest.raises(UnknownPlugin):
        validate_params("nope", {})


def test_validate_params_returns_params_or_located_errors() -> None:
    ok = validate_params("echo", {"text": "hi"})
    assert ok == EchoParams(text="hi")
    problems = validate_params("cmd", {"executable": 1, "env": {"A": 2}, "bogus": True})
    assert isinstance(problems, list)
    assert all(isinstance(p, ParamError) and p.message for p in problems)
    assert {p.path for p in problems} == {("executable",), ("env", "A"), ("bogus",)}
