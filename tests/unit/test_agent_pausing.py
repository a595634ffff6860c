"""Developer mode on the agent: tasks pause only at step boundaries and wait to be resumed."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

from testfleet.agent.devtools import DevTools
from testfleet.agent.executor import TaskExecutor
from testfleet.agent.outbox import Outbox
from testfleet.hub.redact import TokenRedactor
from testfleet.protocol.wire import RunTask, StepSpec
from testfleet.protocol.wire_dev import DevList, DevRun, PauseFlags


def three_steps(task_id: int = 5, fail_second: bool = False) -> RunTask:
    """A task of three echo steps (the second a failing cmd when asked)."""
    second = (
        StepSpec(name="two", plugin="cmd", params={"executable": "false"})
        if fail_second
        else StepSpec(name="two", plugin="echo", params={"text": "2"})
    )
    return RunTask(
        task_id=task_id,
        job_id=1,
        device_name="slot-0",
        steps=[
            StepSpec(name="one", plugin="echo", params={"text": "1"}),
            second,
            StepSpec(name="three", plugin="echo", params={"text": "3"}),
        ],
    )


def sent(outbox: Outbox) -> list[dict[str, Any]]:
    """Every event the outbox holds, decoded."""
    return [json.loads(entry.text) for entry in outbox.after(0)]


def kinds(outbox: Outbox) -> list[tuple[str, int | None]]:
    """(type, step index) of every event but logs."""
    return [(e["type"], e.get("step_index")) for e in sent(outbox) if e["type"] != "LOG"]


async def settle(executor: TaskExecutor, rounds: int = 50) -> None:
    """Let the executor run until nothing changes (bounded)."""
    for _ in range(rounds):
        await asyncio.sleep(0.01)


def test_a_task_pauses_before_the_named_step_and_goes_on_when_resumed() -> None:
    async def scenario() -> tuple[list[Any], list[Any], str]:
        outbox = Outbox()
        executor = TaskExecutor(outbox)
        executor.pausing.set_flags(1, PauseFlags(pause_at="two"))
        executor.start(three_steps())
        await settle(executor)
        before = kinds(outbox)
        assert 5 in executor.pausing.paused
        assert executor.pausing.resume(1, "dev") == 1
        await asyncio.wait_for(asyncio.gather(*executor.running.values()), 10)
        return before, kinds(outbox), sent(outbox)[-1]["state"]

    before, after, state = asyncio.run(scenario())
    assert before == [
        ("TASK_STARTED", None),
        ("STEP_STARTED", 0),
        ("STEP_FINISHED", 0),
        ("TASK_PAUSED", 1),
    ]
    assert after[4:] == [
        ("TASK_RESUMED", 1),
        ("STEP_STARTED", 1),
        ("STEP_FINISHED", 1),
        ("STEP_STARTED", 2),
        ("STEP_FINISHED", 2),
        ("TASK_FINISHED", None),
    ]
    assert state == "passed"


def test_resume_with_nothing_paused_changes_nothing() -> None:
    async def scenario() -> tuple[int, str]:
        outbox = Outbox()
        executor = TaskExecutor(outbox)
        resumed = executor.pausing.resume(1, "dev")
        executor.start(three_steps())
        await asyncio.wait_for(asyncio.gather(*executor.running.values()), 10)
        return resumed, sent(outbox)[-1]["state"]

    assert asyncio.run(scenario()) == (0, "passed")


def test_pause_on_next_pauses_at_every_boundary_until_turned_off() -> None:
    async def scenario() -> list[Any]:
        outbox = Outbox()
        executor = TaskExecutor(outbox)
        executor.pausing.set_flags(1, PauseFlags(pause_on_next=True))
        executor.start(three_steps())
        await settle(executor)
        executor.pausing.resume(1)
        await settle(executor)
        executor.pausing.set_flags(1, PauseFlags())
        executor.pausing.resume(1)
        await asyncio.wait_for(asyncio.gather(*executor.running.values()), 10)
        return [k for k in kinds(outbox) if k[0] in ("TASK_PAUSED", "TASK_RESUMED")]

    assert asyncio.run(scenario()) == [
        ("TASK_PAUSED", 0),
        ("TASK_RESUMED", 0),
        ("TASK_PAUSED", 1),
        ("TASK_RESUMED", 1),
    ]


def test_pause_on_failure_then_ignore_failure_runs_the_rest() -> None:
    async def scenario(ignore: bool) -> tuple[list[Any], str]:
        outbox = Outbox()
        executor = TaskExecutor(outbox)
        executor.pausing.set_flags(1, PauseFlags(pause_on_failure=True))
        executor.start(three_steps(fail_second=True))
        await settle(executor)
        assert executor.pausing.paused[5].reason == "step 'two' failed"
        executor.pausing.resume(1, ignore_failure=ignore)
        await asyncio.wait_for(asyncio.gather(*executor.running.values()), 10)
        return kinds(outbox), sent(outbox)[-1]["state"]

    ignored, state = asyncio.run(scenario(True))
    assert ("STEP_STARTED", 2) in ignored and state == "passed"
    stopped, state = asyncio.run(scenario(False))
    assert ("STEP_STARTED", 2) not in stopped and state == "failed"


def test_a_paused_task_that_is_stopped_ends_cancelled_without_running_the_step() -> None:
    async def scenario() -> list[dict[str, Any]]:
        outbox = Outbox()
        executor = TaskExecutor(outbox)
        executor.pausing.set_flags(1, PauseFlags(pause_at="two"))
        executor.start(three_steps())
        await settle(executor)
        executor.stop(5, "job stopped")
        await asyncio.wait_for(asyncio.gather(*executor.running.values()), 10)
        assert executor.pausing.paused == {}
        return sent(outbox)

    events = asyncio.run(scenario())
    assert ("STEP_STARTED", 1) not in [(e["type"], e.get("step_index")) for e in events]
    assert (events[-1]["type"], events[-1]["state"]) == ("TASK_FINISHED", "cancelled")


def test_commands_run_only_while_paused_in_the_task_directory_within_limits(
    tmp_path: Path,
) -> None:
    async def scenario() -> list[dict[str, Any]]:
        outbox = Outbox()
        executor = TaskExecutor(outbox, work_root=tmp_path, keep_work=True)
        tools = DevTools(outbox, executor.pausing, executor.workdirs)
        executor.pausing.set_flags(1, PauseFlags(pause_at="two"))
        executor.start(three_steps())
        await settle(executor)
        (tmp_path / "task-5" / "note.txt").write_text("hello")
        await tools.listing(DevList(task_id=5, request_id="r1"))
        for command_id, command, timeout, limit in [
            ("c1", "cat note.txt; echo oops >&2", 10.0, 1000),
            ("c2", "sleep 30", 0.3, 1000),
            ("c3", "yes", 10.0, 5000),
        ]:
            tools.run(
                DevRun(
                    task_id=5,
                    command_id=command_id,
                    command=command,
                    timeout=timeout,
                    max_output=limit,
                )
            )
            await asyncio.wait_for(asyncio.gather(*tools.commands), 10)
        executor.pausing.resume(1)
        await asyncio.wait_for(asyncio.gather(*executor.running.values()), 10)
        tools.run(DevRun(task_id=5, command_id="c4", command="true"))
        await asyncio.wait_for(asyncio.gather(*tools.commands), 10)
        return sent(outbox)

    events = asyncio.run(scenario())
    listing = next(e for e in events if e["type"] == "DEV_LISTING")
    assert listing["directory"] == str(tmp_path / "task-5")
    assert {"name": "note.txt", "kind": "file", "size": 5} in listing["entries"]

    def output(command_id: str) -> str:
        return "".join(
            e["text"]
            for e in events
            if e["type"] == "DEV_COMMAND_OUTPUT" and e["command_id"] == command_id
        )

    def finished(command_id: str) -> dict[str, Any]:
        return next(
            e
            for e in events
            if e["type"] == "DEV_COMMAND_FINISHED" and e["command_id"] == command_id
        )

    assert "hello" in output("c1") and "oops" in output("c1")
    assert finished("c1")["exit_code"] == 0
    assert finished("c2")["timed_out"] and finished("c2")["exit_code"] is None
    assert finished("c3")["truncated"] and len(output("c3")) == 5000
    assert "not running" in finished("c4")["error"]


def test_run_task_leaves_out_pause_flags_it_has_none_of() -> None:
    """An agent that predates developer mode refuses unknown fields: without a developer the
    RUN_TASK it gets is the one it knows."""
    plain = json.loads(three_steps().model_dump_json())
    assert "pause" not in plain
    flagged = three_steps().model_copy(update={"pause": PauseFlags(pause_at="two")})
    assert json.loads(flagged.model_dump_json())["pause"]["pause_at"] == "two"


def test_tokens_in_websocket_query_strings_are_redacted_from_the_log() -> None:
    record = logging.LogRecord(
        "uvicorn.error",
        logging.INFO,
        __file__,
        1,
        '%s - "WebSocket %s" [accepted]',
        ("127.0.0.1:5", "/api/v1/jobs/1/developer/ws?token=tf_secret&x=1"),
        None,
    )
    assert TokenRedactor().filter(record)
    text = record.getMessage()
    assert "tf_secret" not in text and "token=[redacted]&x=1" in text
