"""ConTest descriptors map to ours; what cannot be mapped says where, as a JSON pointer."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from testfleet.protocol.contest import (
    ContestMappingError,
    from_contest,
    is_contest_descriptor,
)
from testfleet.protocol.descriptor import JobDescriptor

CONTEST: dict[str, Any] = {
    "JobName": "test job",
    "Runs": 2,
    "RunInterval": "3s",
    "Tags": ["test", "csv"],
    "TestDescriptors": [
        {
            "TargetManagerName": "TargetList",
            "TargetManagerAcquireParameters": {"Targets": [{"ID": "1234", "FQDN": "host1"}]},
            "TargetManagerReleaseParameters": {},
            "TestFetcherName": "literal",
            "TestFetcherFetchParameters": {
                "TestName": "Literal test",
                "Steps": [
                    {
                        "name": "cmd",
                        "label": "say",
                        "parameters": {"executable": ["echo"], "args": ["Hello"]},
                    }
                ],
            },
        }
    ],
    "Reporting": {
        "RunReporters": [{"Name": "TargetSuccess", "Parameters": {"SuccessExpression": ">80%"}}],
        "FinalReporters": [{"Name": "noop"}],
    },
}

TEST0 = "/TestDescriptors/0"


def contest(change: Callable[[dict[str, Any]], object] | None = None) -> dict[str, Any]:
    """A deep copy of CONTEST, changed in place by `change`."""
    data = copy.deepcopy(CONTEST)
    if change is not None:
        change(data)
    return data


def first_test(data: dict[str, Any]) -> dict[str, Any]:
    """The first test descriptor of `data`."""
    first: dict[str, Any] = data["TestDescriptors"][0]
    return first


def mapping_error(data: dict[str, Any]) -> ContestMappingError:
    """The error mapping `data` raises."""
    with pytest.raises(ContestMappingError) as caught:
        from_contest(data)
    return caught.value


def test_a_full_contest_descriptor_maps_to_ours_and_validates() -> None:
    job = JobDescriptor.model_validate(from_contest(contest()))
    assert (job.name, job.runs, job.run_interval) == ("test job", 2, 3.0)
    assert job.tags == ["csv", "test"]
    (test,) = job.tests
    assert test.name == "Literal test"
    assert (test.devices.count, test.devices.names) == (1, ["host1"])  # FQDN before ID
    (step,) = test.steps
    assert (step.name, step.plugin) == ("say", "cmd")
    # One-element lists become the scalar our cmd takes; args stay a list.
    assert step.params == {"executable": "echo", "args": ["Hello"]}
    (run_reporter,) = job.reporting.run_reporters
    assert (run_reporter.name, run_reporter.params) == ("target_success", {"threshold": ">80%"})
    assert [(r.name, r.params) for r in job.reporting.final_reporters] == [("noop", {})]


def test_the_mapping_itself_is_plain_data() -> None:
    assert from_contest(contest()) == {
        "name": "test job",
        "tags": ["test", "csv"],
        "runs": 2,
        "run_interval": "3s",
        "tests": [
            {
                "name": "Literal test",
                "devices": {"count": 1, "names": ["host1"]},
                "steps": [
                    {
                        "name": "say",
                        "plugin": "cmd",
                        "params": {"executable": "echo", "args": ["Hello"]},
                    }
                ],
            }
        ],
        "reporting": {
            "run_reporters": [{"name": "target_success", "params": {"threshold": ">80%"}}],
            "final_reporters": [{"name": "noop", "params": {}}],
        },
    }


def test_targets_set_the_device_count_and_ids_stand_in_for_missing_fqdns() -> None:
    def targets(data: dict[str, Any]) -> None:
        first_test(data)["TargetManagerAcquireParameters"]["Targets"] = [
            {"ID": "1234", "FQDN": "host1"},
            {"ID": "5678"},
        ]

    (test,) = JobDescriptor.model_validate(from_contest(contest(targets))).tests
    assert (test.devices.count, test.devices.names) == (2, ["host1", "5678"])


def test_defaults_of_a_sparse_contest_descriptor() -> None:
    data = {
        "JobName": "sparse",
        "TestDescriptors": [
            {
                "TestFetcherFetchParameters": {
                    "Steps": [{"name": "Sleep", "parameters": {"Duration": ["1s"]}}]
                }
            }
        ],
    }
    job = JobDescriptor.model_validate(from_contest(data))
    assert (job.runs, job.run_interval, job.tags) == (1, 0.0, [])
    (test,) = job.tests
    assert (test.name, test.devices.count, test.devices.names) == ("test-0", 1, [])
    (step,) = test.steps
    assert (step.name, step.plugin, step.params) == ("sleep-0", "sleep", {"duration": "1s"})


def test_runs_zero_carries_over() -> None:
    job = JobDescriptor.model_validate(from_contest(contest(lambda d: d.update(Runs=0))))
    assert job.runs == 0


def test_contest_documents_are_told_apart_from_ours() -> None:
    assert is_contest_descriptor(contest())
    assert not is_contest_descriptor({"name": "ours", "tests": []})
    assert not is_contest_descriptor([CONTEST])


@pytest.mark.parametrize(
    ("change", "location", "words"),
    [
        (
            lambda d: first_test(d).update(TargetManagerName="CSVFileTargetManager"),
            f"{TEST0}/TargetManagerName",
            "target manager 'CSVFileTargetManager' is not supported",
        ),
        (
            lambda d: first_test(d).update(TestFetcherName="URI"),
            f"{TEST0}/TestFetcherName",
            "test fetcher 'URI' is not supported",
        ),
        (
            lambda d: d.update(Extra=1),
            "/Extra",
            "unknown ConTest field 'Extra'",
        ),
        (
            lambda d: d.update(TestDescriptors={"not": "a list"}),
            "/TestDescriptors",
            "must be a list",
        ),
        (
            lambda d: d["TestDescriptors"].append("not an object"),
            "/TestDescriptors/1",
            "must be an object",
        ),
        (
            lambda d: first_test(d)["TestFetcherFetchParameters"].pop("Steps"),
            f"{TEST0}/TestFetcherFetchParameters/Steps",
            "Steps must be a list",
        ),
        (
            lambda d: first_test(d)["TargetManagerAcquireParameters"].update(Targets="host1"),
            f"{TEST0}/TargetManagerAcquireParameters/Targets",
            "Targets must be a list",
        ),
        (
            lambda d: first_test(d)["TestFetcherFetchParameters"]["Steps"].append({"label": "x"}),
            f"{TEST0}/TestFetcherFetchParameters/Steps/1",
            "needs at least 'name'",
        ),
        (
            lambda d: d.update(Reporting=["TargetSuccess"]),
            "/Reporting",
            "Reporting must be an object",
        ),
    ],
)
def test_what_cannot_be_mapped_is_located(
    change: Callable[[dict[str, Any]], object], location: str, words: str
) -> None:
    error = mapping_error(contest(change))
    assert error.location == location
    assert words in error.message
    assert isinstance(error, ValueError)


@pytest.mark.parametrize(
    ("change", "location"),
    [
        (
            lambda d: first_test(d).update(TargetManagerAcquireParameters=["host1"]),
            f"{TEST0}/TargetManagerAcquireParameters",
        ),
        (
            lambda d: first_test(d).update(TestFetcherFetchParameters="steps"),
            f"{TEST0}/TestFetcherFetchParameters",
        ),
        (
            lambda d: first_test(d)["TestFetcherFetchParameters"]["Steps"][0].update(
                parameters=["echo"]
            ),
            f"{TEST0}/TestFetcherFetchParameters/Steps/0/parameters",
        ),
        (
            lambda d: d["Reporting"].update(RunReporters=["TargetSuccess"]),
            "/Reporting/RunReporters/0",
        ),
        (
            lambda d: d["Reporting"]["RunReporters"][0].update(Parameters=[">80%"]),
            "/Reporting/RunReporters/0/Parameters",
        ),
    ],
)
def test_parts_of_the_wrong_shape_are_located(
    change: Callable[[dict[str, Any]], object], location: str
) -> None:
    assert mapping_error(contest(change)).location == location


@pytest.mark.parametrize("target", [{}, {"Name": "host1"}, "host1"], ids=["empty", "no-id", "str"])
def test_a_target_without_an_id_is_located(target: Any) -> None:
    def targets(data: dict[str, Any]) -> None:
        first_test(data)["TargetManagerAcquireParameters"]["Targets"] = [target]

    error = mapping_error(contest(targets))
    assert error.location == f"{TEST0}/TargetManagerAcquireParameters/Targets/0"
