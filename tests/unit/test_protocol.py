"""Durations, descriptors, thresholds and the ConTest mapping."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from testfleet.protocol.contest import ContestMappingError, from_contest
from testfleet.protocol.descriptor import JobDescriptor, parse_threshold
from testfleet.protocol.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        (30, 30.0),
        (2.5, 2.5),
        ("30s", 30.0),
        ("5m", 300.0),
        ("1h30m", 5400.0),
        ("500ms", 0.5),
        (" 2 m ", 120.0),
        ("1d", 86400.0),
        ("45", 45.0),
    ],
)
def test_durations_parse(text: Any, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["abc", "-1", True, "5x", "", "1m5", None, [1]])
def test_bad_durations_say_what_is_accepted(bad: Any) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(bad)


def test_durations_format_back() -> None:
    assert [format_duration(s) for s in (0.25, 30, 90, 3600, 5400.5)] == [
        "250ms",
        "30s",
        "1m30s",
        "1h",
        "1h30m0.5s",
    ]


def _job(**overrides: Any) -> dict[str, Any]:
    job: dict[str, Any] = {
        "name": "j",
        "tests": [
            {"name": "t", "steps": [{"name": "s", "plugin": "echo", "params": {"text": "x"}}]}
        ],
    }
    job.update(overrides)
    return job


def test_descriptor_defaults() -> None:
    job = JobDescriptor.model_validate(_job(tags=["b", "a", "b"]))
    test = job.tests[0]
    assert (job.runs, job.run_interval, job.tags) == (1, 0.0, ["a", "b"])
    assert (test.devices.count, test.devices.timeout, test.retry.count) == (1, 300.0, 0)


def _locations(data: dict[str, Any]) -> set[tuple[Any, ...]]:
    with pytest.raises(ValidationError) as caught:
        JobDescriptor.model_validate(data)
    return {tuple(e["loc"]) for e in caught.value.errors()}


def test_descriptor_errors_are_located() -> None:
    assert ("tests",) in _locations(_job(tests=[]))
    assert ("colour",) in _locations(_job(colour="red"))
    assert ("runs",) in _locations(_job(runs=-1))
    bad_step = _job(
        tests=[{"name": "t", "steps": [{"name": "s", "plugin": "echo", "timeout": "soon"}]}]
    )
    assert ("tests", 0, "steps", 0, "timeout") in _locations(bad_step)
    twice = _job(
        tests=[
            {
                "name": "t",
                "steps": [{"name": "s", "plugin": "echo"}, {"name": "s", "plugin": "echo"}],
            }
        ]
    )
    assert ("tests", 0, "steps") in _locations(twice)
    few = _job(
        tests=[
            {
                "name": "t",
                "devices": {"count": 2, "names": ["x"]},
                "steps": [{"name": "s", "plugin": "echo"}],
            }
        ]
    )
    assert ("tests", 0, "devices") in _locations(few)
    assert ("tags",) in _locations(_job(tags=["no spaces!"]))


def test_runs_zero_means_until_stopped() -> None:
    assert JobDescriptor.model_validate(_job(runs=0)).runs == 0


@pytest.mark.parametrize(
    ("expression", "parsed"),
    [
        (">80%", (">", 80.0, True)),
        (">=95%", (">=", 95.0, True)),
        ("=100%", ("==", 100.0, True)),
        (">=3", (">=", 3.0, False)),
        (" < 50 % ", ("<", 50.0, True)),
    ],
)
def test_thresholds(expression: str, parsed: tuple[str, float, bool]) -> None:
    assert parse_threshold(expression) == parsed


@pytest.mark.parametrize("bad", ["80%", ">", "~80%", ">120%", ">=x"])
def test_bad_thresholds(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_threshold(bad)


CONTEST = {
    "JobName": "test job",
    "Runs": 2,
    "RunInterval": "3s",
    "Tags": ["test", "csv"],
    "TestDescriptors": [
        {
            "TargetManagerName": "TargetList",
            "TargetManagerAcquireParameters": {
                "Targets": [{"ID": "1234", "FQDN": "host1"}, {"ID": "5678"}]
            },
            "TargetManagerReleaseParameters": {},
            "TestFetcherName": "literal",
            "TestFetcherFetchParameters": {
                "TestName": "Literal test",
                "Steps": [
                    {
                        "name": "cmd",
                        "label": "say",
                        "parameters": {"executable": ["echo"], "args": ["Hello"]},
                    },
                    {"name": "sleep", "parameters": {"duration": ["1s"]}},
                ],
            },
        }
    ],
    "Reporting": {
        "RunReporters": [{"Name": "TargetSuccess", "Parameters": {"SuccessExpression": ">80%"}}],
        "FinalReporters": [{"Name": "noop"}],
    },
}


def test_contest_descriptor_maps_to_ours() -> None:
    job = JobDescriptor.model_validate(from_contest(CONTEST))
    assert (job.name, job.runs, job.run_interval, job.tags) == ("test job", 2, 3.0, ["csv", "test"])
    (test,) = job.tests
    assert test.name == "Literal test"
    assert (test.devices.count, test.devices.names) == (2, ["host1", "5678"])
    assert [(s.name, s.plugin, s.params) for s in test.steps] == [
        ("say", "cmd", {"executable": "echo", "args": ["Hello"]}),
        ("sleep-1", "sleep", {"duration": "1s"}),
    ]
    assert job.reporting.run_reporters[0].name == "target_success"
    assert job.reporting.run_reporters[0].params == {"threshold": ">80%"}
    assert job.reporting.final_reporters[0].name == "noop"


@pytest.mark.parametrize(
    ("change", "location"),
    [
        ({"TargetManagerName": "CSVFileTargetManager"}, "/TestDescriptors/0/TargetManagerName"),
        ({"TestFetcherName": "URI"}, "/TestDescriptors/0/TestFetcherName"),
        (
            {"TestFetcherFetchParameters": {"TestName": "x"}},
            "/TestDescriptors/0/TestFetcherFetchParameters/Steps",
        ),
    ],
)
def test_unsupported_contest_parts_are_located(change: dict[str, Any], location: str) -> None:
    bad = {**CONTEST, "TestDescriptors": [{**CONTEST["TestDescriptors"][0], **change}]}  # type: ignore[index, dict-item]
    with pytest.raises(ContestMappingError) as caught:
        from_contest(bad)
    assert caught.value.location == location
    with pytest.raises(ContestMappingError, match="unknown ConTest field"):
        from_contest({**CONTEST, "Extra": 1})
