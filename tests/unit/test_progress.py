"""The runner's pure decisions: after an attempt, outcomes and failure messages."""

from __future__ import annotations

from testfleet.hub.jobs.progress import after_attempt, attempt_passed, task_failures
from testfleet.protocol.descriptor import ReporterSpec
from testfleet.protocol.states import RunState
from testfleet.store.records import TaskRecord


def task(device: str, state: RunState, error: str | None = None) -> TaskRecord:
    return TaskRecord(
        id=1,
        job_id=1,
        run=1,
        test_index=0,
        attempt=1,
        device_id=device,
        device_name=device,
        agent_id=1,
        state=state,
        error=error,
    )


OK, BAD = RunState.PASSED, RunState.FAILED


def test_an_attempt_passes_when_every_task_passed() -> None:
    assert attempt_passed([task("a", OK), task("b", OK)], [])
    assert not attempt_passed([task("a", OK), task("b", BAD)], [])


def test_target_success_decides_an_attempt() -> None:
    half = [ReporterSpec(name="target_success", params={"threshold": ">=50%"})]
    assert attempt_passed([task("a", OK), task("b", BAD)], half)
    assert not attempt_passed([task("a", BAD), task("b", BAD)], half)


def test_a_failed_attempt_with_retries_left_is_tried_again_avoiding_its_failures() -> None:
    after = after_attempt([task("a", OK), task("b", BAD)], attempt=1, retries=1, run_reporters=[])
    assert (after.done, after.passed, after.avoid) == (False, False, frozenset({"b"}))


def test_the_last_allowed_attempt_ends_the_test() -> None:
    after = after_attempt([task("b", BAD)], attempt=2, retries=1, run_reporters=[])
    assert (after.done, after.passed) == (True, False)
    assert after_attempt([task("b", OK)], attempt=1, retries=5, run_reporters=[]).passed


def test_task_failures_name_the_first_five() -> None:
    tasks = [task(f"d{i}", RunState.INCOMPLETE, "lost") for i in range(7)] + [task("ok", OK)]
    message = task_failures(tasks)
    assert message.startswith("1/8 tasks passed: d0 incomplete (lost); d1")
    assert "d5" not in message
