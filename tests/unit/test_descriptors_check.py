"""The hub's edge for descriptors: decode the body, then check it all, every error located."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import yaml

from testfleet.hub.descriptors import MAX_DESCRIPTOR_BYTES, check_descriptor, parse_body
from testfleet.hub.errors import ApiError

EXAMPLE: dict[str, Any] = {
    "name": "smoke",
    "tags": ["nightly"],
    "runs": 1,
    "run_interval": 0,
    "tests": [
        {
            "name": "hello",
            "devices": {"count": 1, "capabilities": {"platformName": "linux"}},
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

CONTEST: dict[str, Any] = {
    "JobName": "test job",
    "Runs": 2,
    "RunInterval": "3s",
    "TestDescriptors": [
        {
            "TargetManagerName": "TargetList",
            "TargetManagerAcquireParameters": {"Targets": [{"ID": "1234", "FQDN": "host1"}]},
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


def example(**overrides: Any) -> dict[str, Any]:
    """A deep copy of the architecture page's example with top-level `overrides`."""
    data = copy.deepcopy(EXAMPLE)
    data.update(overrides)
    return data


def refused(data: Any) -> ApiError:
    """The ApiError check_descriptor raises for `data`."""
    with pytest.raises(ApiError) as caught:
        check_descriptor(data)
    return caught.value


def refused_body(raw: bytes, content_type: str = "application/json") -> ApiError:
    """The ApiError parse_body raises for `raw`."""
    with pytest.raises(ApiError) as caught:
        parse_body(raw, content_type)
    return caught.value


def locations(error: ApiError) -> list[str]:
    """The JSON pointers an error names."""
    return [detail.location for detail in error.errors]


# ---- parse_body ---------------------------------------------------------------------------------


@pytest.mark.parametrize("content_type", ["", "application/json", "application/json; q=1"])
def test_json_is_the_default(content_type: str) -> None:
    assert parse_body(json.dumps(EXAMPLE).encode(), content_type) == EXAMPLE


@pytest.mark.parametrize(
    "content_type",
    ["application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml", "Text/YAML; q=1"],
)
def test_yaml_by_content_type(content_type: str) -> None:
    assert parse_body(yaml.safe_dump(EXAMPLE).encode(), content_type) == EXAMPLE


def test_yaml_sent_as_json_is_malformed_json() -> None:
    error = refused_body(yaml.safe_dump(EXAMPLE).encode(), "application/json")
    assert (error.status, error.code) == (400, "malformed_body")
    assert "invalid JSON" in error.message


def test_malformed_json_says_line_and_column() -> None:
    raw = b'{\n  "name": "smoke",\n  "runs" 1\n}'
    error = refused_body(raw)
    assert (error.status, error.code) == (400, "malformed_body")
    assert "invalid JSON at line 3, column 10" in error.message


def test_malformed_yaml_says_line_and_column() -> None:
    raw = b"name: smoke\ntests:\n  - name: [unclosed\n"
    error = refused_body(raw, "application/yaml")
    assert (error.status, error.code) == (400, "malformed_body")
    assert "invalid YAML at line" in error.message and "column" in error.message


def test_yaml_tags_that_build_objects_are_refused() -> None:
    raw = b"name: !!python/object/apply:os.system ['true']\n"
    assert refused_body(raw, "application/yaml").status == 400


@pytest.mark.parametrize("raw", [b"", b"   \n\t ", b"\n"])
def test_an_empty_body_is_400(raw: bytes) -> None:
    error = refused_body(raw)
    assert (error.status, error.code) == (400, "malformed_body")
    assert "empty" in error.message


def test_a_body_that_is_not_utf8_is_400() -> None:
    error = refused_body(b'{"name": "\xff"}')
    assert (error.status, error.code) == (400, "malformed_body")
    assert "UTF-8" in error.message


def test_a_body_too_large_is_413() -> None:
    padding = " " * (MAX_DESCRIPTOR_BYTES - len(json.dumps(EXAMPLE)))
    assert parse_body((json.dumps(EXAMPLE) + padding).encode(), "") == EXAMPLE  # at the limit
    error = refused_body((json.dumps(EXAMPLE) + padding + " ").encode())
    assert (error.status, error.code) == (413, "too_large")
    assert str(MAX_DESCRIPTOR_BYTES) in error.message


@pytest.mark.parametrize(
    ("raw", "content_type"),
    [
        (b'{"runs": ' + b"1" * 5000 + b"}", "application/json"),
        (b"runs: " + b"1" * 5000, "application/yaml"),
        (b"[" * 100_000 + b"]" * 100_000, "application/json"),
        (b"[" * 800 + b"]" * 800, "application/yaml"),
    ],
    ids=["json-long-int", "yaml-long-int", "json-deep", "yaml-deep"],
)
def test_hostile_bodies_are_refused_with_4xx_not_500(raw: bytes, content_type: str) -> None:
    # Caught here: a RecursionError's thousand-frame traceback would take long to print.
    try:
        check_descriptor(parse_body(raw, content_type))
    except ApiError as error:
        outcome: int | str = error.status
    except (ValueError, RecursionError) as error:
        outcome = type(error).__name__
    else:
        outcome = "accepted"
    assert outcome in (400, 413, 422)


# ---- check_descriptor ---------------------------------------------------------------------------


def test_the_example_passes_every_check() -> None:
    descriptor = check_descriptor(example())
    assert [s.plugin for s in descriptor.tests[0].steps] == ["echo", "cmd"]


@pytest.mark.parametrize("document", [[EXAMPLE], "smoke", 3, None])
def test_a_document_that_is_not_an_object_is_422(document: Any) -> None:
    error = refused(document)
    assert (error.status, error.code, locations(error)) == (422, "invalid_descriptor", ["/"])


def test_schema_errors_are_422_with_json_pointers() -> None:
    data = example(runs=-1, colour="red")
    data["tests"][0]["steps"] = []
    error = refused(data)
    assert (error.status, error.code) == (422, "invalid_descriptor")
    assert set(locations(error)) == {"/runs", "/colour", "/tests/0/steps"}
    assert error.message.startswith(error.errors[0].location + ": ")


def test_an_unknown_plugin_is_422_listing_the_known_ones() -> None:
    data = example()
    data["tests"][0]["steps"][1]["plugin"] = "ssh"
    error = refused(data)
    assert (error.status, locations(error)) == (422, ["/tests/0/steps/1/plugin"])
    assert "unknown step plugin 'ssh'" in error.message
    for known in ("cmd", "echo", "sleep"):
        assert known in error.errors[0].message


def test_bad_plugin_params_are_located_below_params() -> None:
    data = example()
    data["tests"][0]["steps"][1]["params"] = {"args": ["x"]}  # cmd without executable
    error = refused(data)
    assert (error.status, locations(error)) == (422, ["/tests/0/steps/1/params/executable"])
    assert "required" in error.errors[0].message.lower()


def test_every_bad_param_of_every_step_is_reported() -> None:
    data = example()
    data["tests"][0]["steps"][0]["params"] = {"text": 5, "colour": "red"}
    data["tests"][0]["steps"][1]["params"]["timeout"] = "soon"
    error = refused(data)
    assert set(locations(error)) == {
        "/tests/0/steps/0/params/text",
        "/tests/0/steps/0/params/colour",
        "/tests/0/steps/1/params/timeout",
    }


def test_a_bad_reporter_threshold_is_located() -> None:
    data = example()
    data["reporting"]["run_reporters"][0]["params"]["threshold"] = "most"
    error = refused(data)
    assert (error.status, locations(error)) == (
        422,
        ["/reporting/run_reporters/0/params/threshold"],
    )
    assert "is not a success expression" in error.errors[0].message


@pytest.mark.parametrize(
    ("reporter", "location", "words"),
    [
        ({"name": "mail"}, "/reporting/final_reporters/0/name", "unknown reporter 'mail'"),
        ({"name": "noop", "params": {"x": 1}}, "/reporting/final_reporters/0/params", "no params"),
        (
            {"name": "target_success", "params": {"threshold": 80}},
            "/reporting/final_reporters/0/params/threshold",
            "must be a string",
        ),
        (
            {"name": "target_success", "params": {"min": 1}},
            "/reporting/final_reporters/0/params/min",
            "unknown param 'min'",
        ),
    ],
)
def test_bad_reporters_are_located(reporter: dict[str, Any], location: str, words: str) -> None:
    data = example()
    data["reporting"]["final_reporters"] = [reporter]
    error = refused(data)
    assert locations(error) == [location]
    assert words in error.errors[0].message


def test_plugin_and_reporter_problems_are_reported_together() -> None:
    data = example()
    data["tests"][0]["steps"][0]["plugin"] = "nope"
    data["reporting"]["run_reporters"][0]["params"]["threshold"] = ">200%"
    assert locations(refused(data)) == [
        "/tests/0/steps/0/plugin",
        "/reporting/run_reporters/0/params/threshold",
    ]


def test_contest_input_is_accepted() -> None:
    descriptor = check_descriptor(copy.deepcopy(CONTEST))
    assert descriptor.name == "test job"
    assert descriptor.tests[0].steps[0].params == {"executable": "echo", "args": ["Hello"]}
    assert descriptor.reporting.run_reporters[0].name == "target_success"


def test_contest_input_through_the_body_parser_as_yaml() -> None:
    body = parse_body(yaml.safe_dump(CONTEST).encode(), "application/yaml")
    assert check_descriptor(body).tests[0].devices.names == ["host1"]


def test_contest_input_that_cannot_be_mapped_is_422_with_its_pointer() -> None:
    data = copy.deepcopy(CONTEST)
    data["TestDescriptors"][0]["TargetManagerName"] = "CSVFileTargetManager"
    error = refused(data)
    assert (error.status, error.code) == (422, "invalid_descriptor")
    assert locations(error) == ["/TestDescriptors/0/TargetManagerName"]


def test_contest_input_with_a_bad_step_is_checked_like_ours() -> None:
    data = copy.deepcopy(CONTEST)
    data["TestDescriptors"][0]["TestFetcherFetchParameters"]["Steps"][0]["name"] = "SSHCmd"
    error = refused(data)
    assert locations(error) == ["/tests/0/steps/0/plugin"]
    assert "unknown step plugin 'sshcmd'" in error.message


def test_contest_input_of_the_wrong_shape_is_422() -> None:
    data = copy.deepcopy(CONTEST)
    data["TestDescriptors"][0]["TargetManagerAcquireParameters"] = ["host1"]
    assert refused(data).status == 422


def test_a_non_finite_duration_in_json_is_422() -> None:
    body = parse_body(b'{"name": "j", "run_interval": Infinity, "tests": []}', "")
    body["tests"] = EXAMPLE["tests"]
    error = refused(body)
    assert locations(error) == ["/run_interval"]
