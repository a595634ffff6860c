"""The runner, end to end in one process: tasks to agents, results back, retries, stops."""

from __future__ import annotations

from pathlib import Path

import pytest

from testfleet.protocol.states import JobState, RunState
from testfleet.protocol.wire import RunTask, StepFinished, StepStarted, StopTask, TaskStarted
from tests.support.inproc import eventually, one_test_job, running_hub

pytestmark = pytest.mark.anyio


async def test_a_job_runs_on_an_agent_and_completes(tmp_path: Path) -> None:
    async with running_hub(tmp_path) as hub:
        agent = await hub.agent("a1")
        job_id = await hub.start(one_test_job(steps=2))

        task = await agent.expect(RunTask)
        assert (task.job_id, task.device_name) == (job_id, "slot-0")
        assert [s.name for s in task.steps] == ["s0", "s1"]
        agent.finish(task, output="hello\n")
        status = await hub.wait(job_id)

    assert status.state == JobState.COMPLETED
    (run,) = status.runs
    (test,) = run.tests
    (only,) = test.tasks
    assert (only.state, only.agent, only.device_id) == (RunState.PASSED, "a1", "a1:slot-0")
    assert [s.state for s in only.steps] == [RunState.PASSED, RunState.PASSED]


async def test_a_failed_attempt_is_retried_on_another_device(tmp_path: Path) -> None:
    async with running_hub(tmp_path) as hub:
        agent = await hub.agent("a1", slots=2)
        job_id = await hub.start(one_test_job(retry={"count": 1}))

        first = await agent.expect(RunTask)
        agent.finish(first, RunState.FAILED)
        second = await agent.expect(RunTask)
        agent.finish(second)
        status = await hub.wait(job_id)

    assert first.device_name != second.device_name
    tasks = status.runs[0].tests[0].tasks
    assert [(t.attempt, t.state) for t in tasks] == [(1, RunState.FAILED), (2, RunState.PASSED)]
    assert status.state == JobState.COMPLETED


async def test_a_test_fails_when_no_free_device_matches(tmp_path: Path) -> None:
    async with running_hub(tmp_path) as hub:
        await hub.agent("a1", labels={"pool": "a"})
        job = one_test_job(devices={"labels": {"pool": "nope"}, "timeout": 0.3})
        status = await hub.wait(await hub.start(job))

    assert status.state == JobState.FAILED
    test = status.runs[0].tests[0]
    assert test.state == RunState.FAILED
    assert test.error is not None
    assert test.error.startswith("no free devices matched within 300ms")
    assert "labels {'pool': 'nope'}" in test.error


async def test_a_stopped_job_whose_agent_ignores_the_stop_ends_cancelled_after_the_grace(
    tmp_path: Path,
) -> None:
    async with running_hub(tmp_path, stop_grace=0.3) as hub:
        agent = await hub.agent("a1")
        job_id = await hub.start(one_test_job())
        task = await agent.expect(RunTask)
        agent.event(TaskStarted(seq=1, task_id=task.task_id))
        agent.event(StepStarted(seq=1, task_id=task.task_id, step_index=0))
        await agent.acked()

        response = await hub.api.post(f"/api/v1/jobs/{job_id}/stop")
        assert response.json()["state"] == "cancelling"
        stop = await agent.expect(StopTask)  # and the agent does nothing about it
        status = await hub.wait(job_id)

    assert stop.task_id == task.task_id
    assert status.state == JobState.CANCELLED
    (only,) = status.runs[0].tests[0].tasks
    assert only.state == RunState.CANCELLED
    assert only.error == "not stopped by its agent within 300ms"
    assert only.steps[0].state == RunState.CANCELLED


async def test_an_agent_that_stops_its_task_ends_the_job_cancelled_at_once(tmp_path: Path) -> None:
    async with running_hub(tmp_path, stop_grace=30) as hub:
        agent = await hub.agent("a1")
        job_id = await hub.start(one_test_job())
        task = await agent.expect(RunTask)
        agent.event(TaskStarted(seq=1, task_id=task.task_id))
        await hub.api.post(f"/api/v1/jobs/{job_id}/stop")
        await agent.expect(StopTask)
        agent.event(
            StepFinished(seq=1, task_id=task.task_id, step_index=0, state=RunState.CANCELLED)
        )
        agent.finish(task, RunState.CANCELLED, steps=0)
        status = await hub.wait(job_id, within=5)

    assert status.state == JobState.CANCELLED
    assert status.runs[0].tests[0].tasks[0].error is None


async def test_a_job_stopped_before_it_starts_is_cancelled_and_a_second_stop_is_refused(
    tmp_path: Path,
) -> None:
    async with running_hub(tmp_path) as hub:
        job = one_test_job(devices={"labels": {"pool": "none"}, "timeout": 60})
        job_id = await hub.start(job)
        first = await hub.api.post(f"/api/v1/jobs/{job_id}/stop")
        status = await hub.wait(job_id)
        again = await hub.api.post(f"/api/v1/jobs/{job_id}/stop")
        unknown = await hub.api.post("/api/v1/jobs/999/stop")

    assert first.status_code == 202
    assert status.state == JobState.CANCELLED
    assert (again.status_code, again.json()["code"]) == (409, "job_finished")
    assert (unknown.status_code, unknown.json()["code"]) == (404, "job_not_found")


async def test_a_lost_agent_leaves_its_task_incomplete(tmp_path: Path) -> None:
    async with running_hub(tmp_path) as hub:
        agent = await hub.agent("a1")
        job_id = await hub.start(one_test_job())
        task = await agent.expect(RunTask)
        agent.event(TaskStarted(seq=1, task_id=task.task_id))
        await agent.acked()
        await agent.disconnect()
        status = await hub.wait(job_id)

    (only,) = status.runs[0].tests[0].tasks
    assert only.state == RunState.INCOMPLETE
    assert only.error is not None
    assert "agent 'a1' lost" in only.error
    assert status.state == JobState.FAILED


async def test_a_pending_task_is_sent_again_when_its_agent_comes_back(tmp_path: Path) -> None:
    async with running_hub(tmp_path, agent_timeout=5.0) as hub:
        agent = await hub.agent("a1")
        await agent.disconnect()
        await eventually(lambda: agent.initialized and len(hub.hub.connections) == 0, "hang-up")
        job_id = await hub.start(one_test_job())
        # The device is free in the store (the agent is not lost yet): the task is created
        # for it while the agent is away, and sent when it registers again.

        async def task_created() -> bool:
            status = await hub.status(job_id)
            return bool(status.runs and status.runs[0].tests and status.runs[0].tests[0].tasks)

        await eventually(task_created, "the task to be created")
        await agent.connect()
        task = await agent.expect(RunTask)
        agent.finish(task)
        status = await hub.wait(job_id)

    assert status.state == JobState.COMPLETED


async def test_a_waiting_test_says_why_after_a_second(tmp_path: Path) -> None:
    async with running_hub(tmp_path) as hub:
        agent = await hub.agent("a1", labels={"pool": "a"})
        never = await hub.start(one_test_job(devices={"labels": {"pool": "nope"}}))
        holder = await hub.start(one_test_job())
        held = await agent.expect(RunTask)
        busy = await hub.start(one_test_job())

        async def waiting(job_id: int) -> str | None:
            status = await hub.status(job_id)
            tests = status.runs[0].tests if status.runs else []
            return tests[0].waiting if tests else None

        never_reason = await eventually(lambda: waiting(never), "a reason", within=3.0)
        busy_reason = await eventually(lambda: waiting(busy), "a reason", within=3.0)
        agent.finish(held)
        await hub.wait(holder)
        next_task = await agent.expect(RunTask)
        agent.finish(next_task)
        done = await hub.wait(busy)
        await hub.api.post(f"/api/v1/jobs/{never}/stop")

    assert never_reason == "waiting: no device has labels pool=nope (known labels: pool=a)"
    assert busy_reason.startswith("waiting: all 1 matching device(s) are taken (1 busy")
    assert done.runs[0].tests[0].waiting is None
