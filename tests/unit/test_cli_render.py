"""Rendering the API's models for people."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

from rich.console import Console, RenderableType

from testfleet.cli.live import LiveState, render_live
from testfleet.cli.render import (
    agents_table,
    devices_table,
    event_line,
    failures,
    job_summary,
    job_tree,
    jobs_table,
    span,
)
from testfleet.protocol.api import (
    AgentInfo,
    DeviceInfo,
    EventRecord,
    JobStatus,
    ReporterResult,
    RunStatus,
    StepStatus,
    TaskStatus,
    TestStatus,
)
from testfleet.protocol.states import RunState

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def step(
    index: int, name: str, plugin: str, state: str, code: int | None, error: str | None = None
) -> StepStatus:
    return StepStatus(
        index=index,
        name=name,
        plugin=plugin,
        state=state,
        exit_code=code,
        started_at=at(1 + index),
        ended_at=at(2.5 + index),
        error=error,
    )


def sample_status(state: str = "failed") -> JobStatus:
    task = TaskStatus(
        task_id=11,
        device_id="dev-1",
        device_name="host-1",
        agent="lab-a",
        state="failed",
        attempt=2,
        started_at=at(1),
        ended_at=at(4),
        steps=[
            step(0, "say", "echo", "passed", 0),
            step(1, "run", "cmd", "failed", 3, "python3 exited with code 3"),
        ],
    )
    test = TestStatus(
        index=0,
        name="hello",
        state="failed",
        attempts=2,
        started_at=at(1),
        ended_at=at(4),
        tasks=[task],
    )
    waiting = TestStatus(index=1, name="later", state="pending", attempts=0, tasks=[])
    run = RunStatus(
        number=1,
        state="failed",
        started_at=at(0.5),
        ended_at=at(4),
        tests=[test, waiting],
        reporters=[
            ReporterResult(name="target_success", success=False, message="0 of 1 devices passed")
        ],
    )
    return JobStatus(
        job_id=7,
        name="smoke",
        state=state,
        requestor="ana",
        tags=["nightly"],
        created_at=T0,
        started_at=at(0.5),
        ended_at=at(4),
        server_id="hub-1",
        runs_requested=1,
        runs=[run],
        descriptor={},
    )


def text_of(renderable: RenderableType, width: int = 140) -> str:
    buffer = io.StringIO()
    Console(file=buffer, width=width, color_system=None).print(renderable)
    return buffer.getvalue()


def test_job_tree_shows_tests_tasks_and_steps() -> None:
    text = text_of(job_tree(sample_status()))
    for expected in (
        "job 7 smoke failed",
        "3.5s",
        "requestor ana",
        "tags nightly",
        "run 1 failed",
        "test hello failed",
        "2 attempts",
        "task 11: host-1 on lab-a, attempt 2 failed",
        "python3 exited with code 3",
        "test later pending",
        "waiting for devices",
        "reporter target_success: failed  0 of 1 devices passed",
    ):
        assert expected in text, expected
    say = next(line for line in text.splitlines() if " say " in line)
    assert "echo" in say and "passed" in say and " 0 " in say and "1.5s" in say


def test_job_tree_says_why_a_paused_job_is_paused() -> None:
    status = sample_status("paused")
    task = status.runs[0].tests[0].tasks[0]
    task.state, task.paused, task.paused_step = RunState.RUNNING, "reached step 'run'", 1
    text = text_of(job_tree(status))
    assert "job 7 smoke paused" in text
    assert "paused: task 11 (host-1): reached step 'run'" in text
    assert "paused: reached step 'run'" in text.split("task 11: host-1")[1]


def test_summary_counts_tests_and_names_failures() -> None:
    text = text_of(job_summary(sample_status()))
    assert "job 7 smoke failed after 3.5s" in text
    assert "tests: 1 failed, 1 pending" in text
    assert "run 1 test hello task 11 (host-1) step run: python3 exited with code 3" in text
    assert failures(sample_status()) == [
        "run 1 test hello task 11 (host-1) step run: python3 exited with code 3"
    ]


def test_span_of_a_running_thing_counts_to_now() -> None:
    assert span(at(0), None, now=at(90)) == "1m30s"
    assert span(None, None) == ""


def test_tables() -> None:
    status = sample_status("completed")
    assert "smoke" in text_of(jobs_table([status]))
    agent = AgentInfo(
        agent_id=1,
        name="lab-a",
        state="online",
        version="0.1.0",
        labels={"pool": "a"},
        devices=2,
        last_seen=T0,
    )
    assert "pool=a" in text_of(agents_table([agent]))
    device = DeviceInfo(
        device_id="dev-1",
        name="host-1",
        agent="lab-a",
        kind="host",
        state="busy",
        capabilities={"platformName": "linux"},
        labels={},
        holder_job_id=7,
    )
    text = text_of(devices_table([device]))
    assert "platformName=linux" in text and "busy" in text


def event(kind: str, **data: Any) -> EventRecord:
    return EventRecord(id=5, kind=kind, job_id=7, task_id=11, at=T0, data=data)


def test_event_lines() -> None:
    line = event_line(event("step_finished", step_index=1, state="failed", exit_code=3))
    assert line.endswith("#5 step_finished task 11 step_index=1 state=failed exit_code=3")
    log = event_line(event("log", stream="stdout", text="one\ntwo\n"))
    assert [part.split(" ", 1)[1] for part in log.splitlines()] == [
        "#5 log task 11 [stdout] one",
        "#5 log task 11 [stdout] two",
    ]


def test_live_view_shows_the_latest_log_lines() -> None:
    state = LiveState(sample_status("running"))
    state.take(event("log", stream="stderr", text="warning: hot\n"))
    state.take(event("step_started", step_index=1))
    assert state.dirty
    text = text_of(render_live(state))
    assert "task 11 stderr: warning: hot" in text and "job 7 smoke running" in text
