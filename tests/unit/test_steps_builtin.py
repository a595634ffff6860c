"""The built-in step plugins, run for real, and the plugin registry."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import pytest

from testfleet.steps.base import LogStream, StepContext, StepResult
from testfleet.steps.builtin import CmdParams, CmdStep, EchoParams, EchoStep, SleepStep
from testfleet.steps.registry import UnknownPlugin, get_plugin, plugins, validate_params


class Recorder:
    """A StepContext whose log is kept."""

    def __init__(self) -> None:
        self.chunks: list[tuple[LogStream, str]] = []

    async def log(self, stream: LogStream, text: str) -> None:
        self.chunks.append((stream, text))

    def context(self) -> StepContext:
        return StepContext(job_id=1, task_id=1, step_index=0, device_name="slot-0", log=self.log)

    def text(self, stream: LogStream) -> str:
        return "".join(t for s, t in self.chunks if s == stream)


def cmd(code: str, **params: object) -> tuple[StepResult, Recorder]:
    recorder = Recorder()
    step_params = CmdParams.model_validate(
        {"executable": sys.executable, "args": ["-c", code], **params}
    )
    result = asyncio.run(CmdStep().run(recorder.context(), step_params))
    return result, recorder


def gone(pid: int) -> bool:
    """True once `pid` has exited (a zombie nobody reaped counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def test_echo_logs_its_text() -> None:
    recorder = Recorder()
    result = asyncio.run(EchoStep().run(recorder.context(), EchoParams(text="hi")))
    assert result.passed and recorder.text("stdout") == "hi\n"


def test_sleep_waits() -> None:
    began = time.monotonic()
    params = SleepStep.Params.model_validate({"duration": "200ms"})
    result = asyncio.run(SleepStep().run(Recorder().context(), params))
    assert result.passed and time.monotonic() - began >= 0.19


def test_cmd_passes_on_zero_and_streams_both_outputs() -> None:
    result, recorder = cmd("import sys; print('out'); print('err', file=sys.stderr)")
    assert (result.passed, result.exit_code) == (True, 0)
    assert recorder.text("stdout") == "out\n" and recorder.text("stderr") == "err\n"


def test_cmd_fails_with_the_exit_code() -> None:
    result, _ = cmd("raise SystemExit(3)")
    assert (result.passed, result.exit_code) == (False, 3)
    assert "exited with code 3" in (result.error or "")


def test_cmd_applies_env_and_cwd(tmp_path: Path) -> None:
    result, recorder = cmd(
        "import os; print(os.environ['TF_X'], os.getcwd())", env={"TF_X": "set"}, cwd=str(tmp_path)
    )
    assert result.passed and recorder.text("stdout") == f"set {tmp_path}\n"


def test_cmd_missing_program_fails_clearly() -> None:
    recorder = Recorder()
    params = CmdParams(executable="/no/such/program")
    result = asyncio.run(CmdStep().run(recorder.context(), params))
    assert not result.passed and "cannot start '/no/such/program'" in (result.error or "")


def test_cmd_timeout_kills_the_program_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    code = (
        f"import os, subprocess; p = subprocess.Popen(['sleep', '30']); "
        f"open({str(pid_file)!r}, 'w').write(str(p.pid)); p.wait()"
    )
    began = time.monotonic()
    result, _ = cmd(code, timeout="1s")
    assert time.monotonic() - began < 6
    assert not result.passed and "timed out after 1s" in (result.error or "")
    child = int(pid_file.read_text())
    time.sleep(0.2)
    assert gone(child)  # the grandchild died with its group


def test_cancelling_cmd_kills_the_program(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    code = f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(30)"

    async def main() -> None:
        params = CmdParams(executable=sys.executable, args=["-c", code])
        task = asyncio.create_task(CmdStep().run(Recorder().context(), params))
        for _ in range(100):
            if pid_file.exists() and pid_file.read_text():
                break
            await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert gone(int(pid_file.read_text()))


def test_cmd_survives_output_that_is_not_utf8() -> None:
    result, recorder = cmd("import sys; sys.stdout.buffer.write(b'a\\xff\\xfeb\\n')")
    assert result.passed and recorder.text("stdout") == "a\ufffd\ufffdb\n"


def test_registry_lists_builtins_and_explains_unknown_ones() -> None:
    assert {"cmd", "echo", "sleep"} <= set(plugins())
    with pytest.raises(UnknownPlugin, match="known plugins: cmd, echo, sleep"):
        get_plugin("nope")
    problems = validate_params("cmd", {"executable": 1, "bogus": True})
    assert isinstance(problems, list)
    assert {p.path for p in problems} == {("executable",), ("bogus",)}
