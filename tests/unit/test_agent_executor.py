"""The agent's task executor: a stop and its task's RUN_TASK may arrive in either order."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from testfleet.agent.executor import TaskExecutor
from testfleet.agent.outbox import Outbox
from testfleet.protocol.wire import RunTask, StepSpec


def echo_task(task_id: int) -> RunTask:
    """A task of one echo step."""
    return RunTask(
        task_id=task_id,
        job_id=1,
        device_name="slot-0",
        steps=[StepSpec(name="say", plugin="echo", params={"text": "hi"})],
    )


def sent(outbox: Outbox) -> list[dict[str, Any]]:
    """Every event the outbox holds, decoded."""
    return [json.loads(entry.text) for entry in outbox.after(0)]


def test_a_task_stopped_before_its_run_task_arrives_is_reported_cancelled_and_never_run() -> None:
    async def scenario() -> tuple[TaskExecutor, Outbox]:
        outbox = Outbox()
        executor = TaskExecutor(outbox)
        executor.stop(42, "job stopped")
        executor.start(echo_task(42))  # late: it must not run
        await asyncio.sleep(0.1)
        return executor, outbox

    executor, outbox = asyncio.run(scenario())
    events = sent(outbox)
    assert [(e["type"], e["task_id"]) for e in events] == [("TASK_FINISHED", 42)]
    assert (events[0]["state"], events[0]["error"]) == ("cancelled", "job stopped")
    assert executor.running == {}
    assert outbox.unacked_final_tasks() == {42}  # held until the hub has stored it


def test_a_stop_for_a_task_that_already_finished_here_sends_nothing() -> None:
    async def scenario() -> Outbox:
        outbox = Outbox()
        executor = TaskExecutor(outbox)
        executor.start(echo_task(7))
        await asyncio.wait_for(asyncio.gather(*executor.running.values()), 10)
        executor.stop(7, "job stopped")
        return outbox

    events = sent(asyncio.run(scenario()))
    assert [e["type"] for e in events] == [
        "TASK_STARTED",
        "STEP_STARTED",
        "LOG",
        "STEP_FINISHED",
        "TASK_FINISHED",
    ]
    assert events[-1]["state"] == "passed"


def test_a_coverage_step_starts_once_the_hub_acknowledged_its_start() -> None:
    """The hub opens the step's coverage session before it acknowledges STEP_STARTED."""

    async def scenario() -> tuple[list[str], list[str], list[str]]:
        outbox = Outbox()
        executor = TaskExecutor(outbox)
        task = echo_task(7)
        task.steps[0].coverage = True
        executor.start(task)
        await asyncio.sleep(0.2)
        held = [e["type"] for e in sent(outbox)]
        outbox.ack(2)  # TASK_STARTED, STEP_STARTED
        await asyncio.sleep(0.2)
        ran = [e["type"] for e in sent(outbox)]
        outbox.ack(4)  # LOG, STEP_FINISHED: the session is closed
        await asyncio.gather(*executor.running.values())
        return held, ran, [e["type"] for e in sent(outbox)]

    held, ran, rest = asyncio.run(scenario())
    assert held == ["TASK_STARTED", "STEP_STARTED"]
    assert ran == ["LOG", "STEP_FINISHED"]  # the task waits for the session to close
    assert rest == ["TASK_FINISHED"]
