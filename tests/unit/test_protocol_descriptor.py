"""The job descriptor: the architecture page's example, defaults, located errors, thresholds."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import ValidationError

from testfleet.protocol.descriptor import JobDescriptor, parse_threshold

EXAMPLE: dict[str, Any] = {
    "name": "smoke",
    "tags": ["nightly"],
    "runs": 1,
    "run_interval": 0,
    "tests": [
        {
            "name": "hello",
            "devices": {
                "count": 1,
                "capabilities": {"platformName": "linux"},
                "labels": {"pool": "a"},
            },
            "steps": [
                {"name": "say", "plugin": "echo", "params": {"text": "hi"}},
                {
                    "name": "run",
                    "plugin": "cmd",
                    "timeout": "30s",
                    "params": {"executable": "python3", "args": ["-c", "print(1)"]},
                },
            ],
            "retry": {"count": 1, "interval": "5s"},
        }
    ],
    "reporting": {
        "run_reporters": [{"name": "target_success", "params": {"threshold": ">80%"}}],
        "final_reporters": [{"name": "noop"}],
    },
}


def minimal(**overrides: Any) -> dict[str, Any]:
    """The smallest valid descriptor, with top-level `overrides`."""
    job: dict[str, Any] = {
        "name": "j",
        "tests": [{"name": "t", "steps": [{"name": "s", "plugin": "echo"}]}],
    }
    job.update(overrides)
    return job


def with_test(**test: Any) -> dict[str, Any]:
    """A descriptor whose only test is `test` (name and one echo step unless given)."""
    return minimal(
        tests=[{"name": "t", "steps": [{"name": "s", "plugin": "echo"}], **test}],
    )


def errors_of(data: dict[str, Any]) -> list[tuple[tuple[str | int, ...], str]]:
    """The (location, message) of every validation error of `data`."""
    with pytest.raises(ValidationError) as caught:
        JobDescriptor.model_validate(data)
    return [(tuple(e["loc"]), e["msg"]) for e in caught.value.errors()]


def locations_of(data: dict[str, Any]) -> set[tuple[str | int, ...]]:
    """Where `data` is invalid."""
    return {loc for loc, _ in errors_of(data)}


def test_the_architecture_example_is_valid() -> None:
    job = JobDescriptor.model_validate(copy.deepcopy(EXAMPLE))
    assert (job.name, job.tags, job.runs, job.run_interval) == ("smoke", ["nightly"], 1, 0.0)
    (test,) = job.tests
    assert test.name == "hello"
    assert test.devices.count == 1
    assert test.devices.capabilities == {"platformName": "linux"}
    assert test.devices.labels == {"pool": "a"}
    say, run = test.steps
    assert (say.name, say.plugin, say.params, say.timeout) == ("say", "echo", {"text": "hi"}, None)
    assert (run.plugin, run.timeout) == ("cmd", 30.0)
    assert run.params == {"executable": "python3", "args": ["-c", "print(1)"]}
    assert (test.retry.count, test.retry.interval) == (1, 5.0)
    (reporter,) = job.reporting.run_reporters
    assert (reporter.name, reporter.params) == ("target_success", {"threshold": ">80%"})
    assert [(r.name, r.params) for r in job.reporting.final_reporters] == [("noop", {})]


def test_the_example_survives_a_dump_and_reload() -> None:
    job = JobDescriptor.model_validate(copy.deepcopy(EXAMPLE))
    assert JobDescriptor.model_validate(job.model_dump(mode="json")) == job


def test_defaults() -> None:
    job = JobDescriptor.model_validate(minimal())
    assert (job.runs, job.run_interval, job.tags) == (1, 0.0, [])
    assert (job.reporting.run_reporters, job.reporting.final_reporters) == ([], [])
    (test,) = job.tests
    devices = test.devices
    assert (devices.count, devices.capabilities, devices.labels) == (1, {}, {})
    assert (devices.names, devices.kind, devices.timeout) == ([], None, 300.0)
    assert (test.retry.count, test.retry.interval) == (0, 0.0)
    (step,) = test.steps
    assert (step.params, step.timeout) == ({}, None)


def test_runs_zero_means_until_stopped() -> None:
    assert JobDescriptor.model_validate(minimal(runs=0)).runs == 0


def test_tags_are_deduplicated_and_sorted() -> None:
    job = JobDescriptor.model_validate(minimal(tags=["nightly", "arm", "nightly", "a.b/c"]))
    assert job.tags == ["a.b/c", "arm", "nightly"]


def test_an_empty_step_list_is_located() -> None:
    assert locations_of(with_test(steps=[])) == {("tests", 0, "steps")}


def test_unknown_fields_are_rejected_where_they_are() -> None:
    assert locations_of(minimal(colour="red")) == {("colour",)}
    step = {"name": "s", "plugin": "echo", "retries": 3}
    assert locations_of(with_test(steps=[step])) == {("tests", 0, "steps", 0, "retries")}
    assert locations_of(with_test(devices={"cnt": 2})) == {("tests", 0, "devices", "cnt")}
    reporting = {"run_reporters": [{"name": "noop", "parameters": {}}]}
    assert locations_of(minimal(reporting=reporting)) == {
        ("reporting", "run_reporters", 0, "parameters")
    }


def test_names_shorter_than_count_are_located() -> None:
    ((location, message),) = errors_of(with_test(devices={"count": 3, "names": ["a", "b"]}))
    assert location == ("tests", 0, "devices")
    assert "names lists 2 device(s) but count asks for 3" in message
    ok = JobDescriptor.model_validate(with_test(devices={"count": 2, "names": ["a", "b", "c"]}))
    assert ok.tests[0].devices.names == ["a", "b", "c"]


def test_duplicated_step_names_are_located() -> None:
    steps = [{"name": "s", "plugin": "echo"}, {"name": "s", "plugin": "sleep"}]
    ((location, message),) = errors_of(with_test(steps=steps))
    assert location == ("tests", 0, "steps")
    assert "'s' is used twice" in message


def test_the_same_step_name_in_two_tests_is_fine() -> None:
    test = {"name": "t", "steps": [{"name": "s", "plugin": "echo"}]}
    job = JobDescriptor.model_validate(minimal(tests=[test, {**test, "name": "u"}]))
    assert [t.name for t in job.tests] == ["t", "u"]


@pytest.mark.parametrize(
    ("data", "location"),
    [
        (minimal(tests=[]), ("tests",)),
        ({"tests": minimal()["tests"]}, ("name",)),
        (minimal(name=""), ("name",)),
        (minimal(name="-leading-dash"), ("name",)),
        (minimal(name="semi;colon"), ("name",)),
        (minimal(runs=-1), ("runs",)),
        (minimal(runs="many"), ("runs",)),
        (minimal(run_interval="soon"), ("run_interval",)),
        (minimal(tags=["has space!"]), ("tags",)),
        (minimal(tags=[""]), ("tags",)),
        (with_test(devices={"count": 0}), ("tests", 0, "devices", "count")),
        (with_test(devices={"timeout": 0}), ("tests", 0, "devices", "timeout")),
        (with_test(retry={"count": -1}), ("tests", 0, "retry", "count")),
        (with_test(retry={"interval": "-5s"}), ("tests", 0, "retry", "interval")),
        (with_test(steps=[{"name": "s"}]), ("tests", 0, "steps", 0, "plugin")),
        (with_test(steps=[{"name": "", "plugin": "echo"}]), ("tests", 0, "steps", 0, "name")),
        (
            with_test(steps=[{"name": "s", "plugin": "echo", "timeout": "0s"}]),
            ("tests", 0, "steps", 0, "timeout"),
        ),
        (
            with_test(steps=[{"name": "s", "plugin": "echo", "timeout": "later"}]),
            ("tests", 0, "steps", 0, "timeout"),
        ),
    ],
)
def test_errors_carry_their_location(data: dict[str, Any], location: tuple[Any, ...]) -> None:
    assert location in locations_of(data)


def test_every_error_is_reported_not_only_the_first() -> None:
    data = minimal(runs=-1, colour="red", tests=[{"name": "t", "steps": []}])
    assert locations_of(data) == {("runs",), ("colour",), ("tests", 0, "steps")}


@pytest.mark.parametrize(
    ("expression", "parsed"),
    [
        (">80%", (">", 80.0, True)),
        (">=95%", (">=", 95.0, True)),
        ("=100%", ("==", 100.0, True)),
        ("==100%", ("==", 100.0, True)),
        (">=3", (">=", 3.0, False)),
        ("<2", ("<", 2.0, False)),
        ("<=12.5%", ("<=", 12.5, True)),
        (" > 80 % ", (">", 80.0, True)),
        (">0%", (">", 0.0, True)),
    ],
)
def test_thresholds(expression: str, parsed: tuple[str, float, bool]) -> None:
    assert parse_threshold(expression) == parsed


@pytest.mark.parametrize(
    "bad", ["80%", ">", "%", "~80%", "=>80%", ">-5%", ">x%", ">80%%", "> 80 percent", ""]
)
def test_bad_thresholds_explain_the_form(bad: str) -> None:
    with pytest.raises(ValueError, match="is not a success expression"):
        parse_threshold(bad)


def test_a_percentage_above_100_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot exceed 100"):
        parse_threshold(">=101%")
    assert parse_threshold(">=101") == (">=", 101.0, False)  # a count may exceed 100
