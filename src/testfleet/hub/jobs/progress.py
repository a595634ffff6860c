"""What happens next, decided from states alone (no I/O): is a test done after an attempt,
which devices a retry avoids, what the reporters judge, and the words for a failure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from testfleet.hub.reporters import Outcome, target_success_passes
from testfleet.protocol.descriptor import DeviceRequest, JobDescriptor, ReporterSpec
from testfleet.protocol.durations import format_duration
from testfleet.protocol.states import RunState
from testfleet.store.records import TaskRecord, TestRecord


def attempt_passed(tasks: Sequence[TaskRecord], run_reporters: Sequence[ReporterSpec]) -> bool:
    """An attempt passes per the run's target_success reporter, or when every task passed."""
    passed = sum(1 for t in tasks if t.state == RunState.PASSED)
    for spec in run_reporters:
        if spec.name == "target_success":
            return target_success_passes(spec.params, passed, len(tasks))
    return passed == len(tasks)


@dataclass(frozen=True)
class AfterAttempt:
    """What follows an attempt at a test: it is done (passed or not), or it is tried again
    avoiding the devices that did not pass."""

    done: bool
    passed: bool
    avoid: frozenset[str] = frozenset()


def after_attempt(
    tasks: Sequence[TaskRecord],
    attempt: int,
    retries: int,
    run_reporters: Sequence[ReporterSpec],
) -> AfterAttempt:
    """Decide on attempt number `attempt` (from 1) of a test allowed `retries` retries."""
    if attempt_passed(tasks, run_reporters):
        return AfterAttempt(done=True, passed=True)
    if attempt > retries:
        return AfterAttempt(done=True, passed=False)
    avoid = frozenset(t.device_id for t in tasks if t.state != RunState.PASSED)
    return AfterAttempt(done=False, passed=False, avoid=avoid)


def outcomes(test_name: str, tasks: Sequence[TaskRecord]) -> list[Outcome]:
    """The reporters' view of a test's tasks."""
    return [Outcome(test=test_name, device_id=t.device_id, state=t.state) for t in tasks]


def final_outcomes(
    descriptor: JobDescriptor, tests: Sequence[TestRecord], tasks: Sequence[TaskRecord]
) -> list[Outcome]:
    """The tasks of each test's last attempt, over every run."""
    last = {(t.run, t.test_index): t.attempts for t in tests}
    return [
        Outcome(test=descriptor.tests[t.test_index].name, device_id=t.device_id, state=t.state)
        for t in tasks
        if last.get((t.run, t.test_index)) == t.attempt
    ]


def no_devices_message(want: DeviceRequest, waiting: str | None = None) -> str:
    """Why a test got no devices (`waiting`: why it waited, last it looked)."""
    parts = [f"{want.count} device(s)"]
    if want.kind:
        parts.append(f"kind {want.kind!r}")
    if want.capabilities:
        parts.append(f"capabilities {want.capabilities}")
    if want.labels:
        parts.append(f"labels {want.labels}")
    if want.names:
        parts.append(f"named {want.names}")
    waited = format_duration(want.timeout)
    message = f"no free devices matched within {waited}: wanted " + ", ".join(parts)
    if waiting:
        message += f" ({waiting.removeprefix('waiting: ')})"
    return message


def task_failures(tasks: Sequence[TaskRecord]) -> str:
    """Why an attempt failed: how many tasks passed, and the first failures."""
    bad = [t for t in tasks if t.state != RunState.PASSED]
    passed = len(tasks) - len(bad)
    detail = "; ".join(
        f"{t.device_id} {t.state}" + (f" ({t.error})" if t.error else "") for t in bad[:5]
    )
    return f"{passed}/{len(tasks)} tasks passed: {detail}"


def describe_test_failure(name: str, state: RunState, error: str | None) -> str:
    """A test's failure as a run reports it."""
    return f"test {name!r} {state}" + (f": {error}" if error else "")
