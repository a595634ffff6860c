"""A job step opens a coverage session around itself: the session is open before the step
runs and finished before the next one, named after the step, and told in the job's events."""

from __future__ import annotations

from pathlib import Path

import pytest

from testfleet.protocol.coverage import SessionStarted, StartAgentSession
from testfleet.protocol.states import RunState
from testfleet.protocol.wire import (
    Ack,
    RunTask,
    StepFinished,
    StepStarted,
    TaskFinished,
    TaskStarted,
)
from tests.hub.test_coverage_sessions import SHOP
from tests.support.fake_probe import FakeProbe
from tests.support.inproc import running_hub

pytestmark = pytest.mark.anyio


def coverage_job(app: str = "shop") -> dict[str, object]:
    return {
        "name": "api",
        "tests": [
            {
                "name": "smoke",
                "steps": [
                    {"name": "setup", "plugin": "echo", "params": {"text": "x"}},
                    {
                        "name": "requests",
                        "plugin": "echo",
                        "params": {"text": "y"},
                        "coverage": {"app": app, "test_type": "AUTO", "realtime": True},
                    },
                ],
            }
        ],
    }


async def test_a_step_records_coverage_in_a_session_of_its_own(tmp_path: Path) -> None:
    async with running_hub(tmp_path) as hub:
        probe = FakeProbe(hub.hub, "shop-1", "shop", "1.0", SHOP)
        await probe.connect()
        agent = await hub.agent("a1")
        job_id = await hub.start(coverage_job())
        task = await agent.expect(RunTask)
        tid = task.task_id
        agent.event(TaskStarted(seq=1, task_id=tid))
        agent.event(StepStarted(seq=1, task_id=tid, step_index=0))
        agent.event(StepFinished(seq=1, task_id=tid, step_index=0, state=RunState.PASSED))
        await agent.acked()
        assert probe.received == []  # no session for a step without `coverage`

        started = agent.event(StepStarted(seq=1, task_id=tid, step_index=1))
        start = await probe.expect(StartAgentSession)
        early = [m for m in agent.received if isinstance(m, Ack) and m.seq >= started.seq]
        probe.numbered(SessionStarted(sessionId=start.payload.sessionId, testType="AUTO", ts=1))
        probe.answer()  # STOP, when the step has finished
        await agent.acked(started.seq)
        probe.part(start.payload.sessionId, {"shop/cart.py": [0, 1, 2]})
        await probe.acked()
        agent.event(StepFinished(seq=1, task_id=tid, step_index=1, state=RunState.PASSED))
        agent.event(TaskFinished(seq=1, task_id=tid, state=RunState.PASSED))
        await agent.acked()
        status = await hub.wait(job_id)
        events = (await hub.api.get(f"/api/v1/jobs/{job_id}/events")).json()["events"]
        session = (await hub.api.get(f"/api/v1/coverage/sessions/{start.payload.sessionId}")).json()

    assert task.steps[1].coverage and not task.steps[0].coverage
    assert early == []  # STEP_STARTED was acknowledged only once the session was open
    assert start.payload.testName == "api/smoke/requests" and start.payload.isRealtime
    assert status.state == "completed"
    assert session["state"] == "finished" and session["jobId"] == job_id
    assert session["totals"]["covered"] == 3
    kinds = {e["kind"]: e["data"] for e in events if e["kind"].startswith("coverage_")}
    assert kinds["coverage_session_started"]["session_id"] == start.payload.sessionId
    assert kinds["coverage_session_finished"]["covered"] == 3


async def test_without_a_probe_the_step_runs_and_the_job_says_why_there_is_no_coverage(
    tmp_path: Path,
) -> None:
    async with running_hub(tmp_path) as hub:
        agent = await hub.agent("a1")
        agent.run_tasks()
        job_id = await hub.start(coverage_job("nobody"))
        status = await hub.wait(job_id)
        events = (await hub.api.get(f"/api/v1/jobs/{job_id}/events")).json()["events"]

    assert status.state == "completed"
    failed = [e for e in events if e["kind"] == "coverage_session_failed"]
    assert len(failed) == 1 and "nobody" in failed[0]["data"]["error"]


async def test_a_bad_coverage_field_is_refused_where_it_is(tmp_path: Path) -> None:
    job = coverage_job()
    job["tests"][0]["steps"][1]["coverage"] = {"application": "shop"}  # type: ignore[index]
    async with running_hub(tmp_path) as hub:
        response = await hub.api.post("/api/v1/jobs", json=job)

    assert response.status_code == 422
    locations = {e["location"] for e in response.json()["errors"]}
    assert "/tests/0/steps/1/coverage/app" in locations
