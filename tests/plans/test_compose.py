"""Compositions checked against a manifest: every problem is a 422 with its JSON pointer."""

from __future__ import annotations

import json
from typing import Any

import pytest

from testfleet.hub.errors import ApiError
from testfleet.hub.testplans.catalog import parse_manifest
from testfleet.hub.testplans.compose import parse_composition, parse_cpu, parse_memory, resolve

MANIFEST = parse_manifest(
    """
name = "demo"
[defaults]
builder = "exec:python"
runner = "local:exec"
[builders."exec:python"]
enabled = true
[runners."local:exec"]
enabled = true
[[testcases]]
name = "talk"
instances = { min = 2, max = 10, default = 2 }
  [testcases.params]
  rounds = { type = "int", default = 1 }
  loud = { type = "bool", default = false }
  pause = { type = "duration", default = "1s" }
"""
)


def composition(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "metadata": {"name": "c", "author": "me"},
        "global": {"plan": "demo", "case": "talk", "total_instances": 3},
        "groups": [
            {"id": "a", "instances": {"count": 2}, "run": {"test_params": {"rounds": "4"}}},
            {"id": "b", "instances": {"count": 1}},
        ],
    }
    for path, value in changes.items():
        target = base
        keys = path.split("__")
        for key in keys[:-1]:
            target = target[int(key)] if key.isdigit() else target[key]
        target[keys[-1]] = value
    return base


def check(data: dict[str, Any]) -> Any:
    parsed, prefix = parse_composition(json.dumps(data).encode(), "application/json")
    return resolve(parsed, MANIFEST, prefix)


def problems(data: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ApiError) as refused:
        check(data)
    assert refused.value.status == 422
    return {d.location: d.message for d in refused.value.errors}


def test_a_good_composition_resolves_with_typed_params_and_defaults() -> None:
    run = check(composition())
    assert (run.builder, run.runner, run.total) == ("exec:python", "local:exec", 3)
    assert run.groups[0].params == {"rounds": 4, "loud": False, "pause": 1.0}
    assert run.groups[1].params == {"rounds": 1, "loud": False, "pause": 1.0}


def test_group_counts_must_add_up_to_total_instances() -> None:
    found = problems(composition(global__total_instances=5))
    assert "add up to 3" in found["/global/total_instances"]


def test_percentages_are_fractions_of_total() -> None:
    data = composition(global__total_instances=4)
    data["groups"][0]["instances"] = {"percentage": 0.5}
    data["groups"][1]["instances"] = {"percentage": 0.5}
    assert [g.count for g in check(data).groups] == [2, 2]
    data["groups"][1]["instances"] = {"count": 1, "percentage": 0.5}
    assert "not both" in problems(data)["/groups/1/instances"]


def test_unknown_builder_runner_case_and_param_are_located() -> None:
    assert (
        "unknown builder" in problems(composition(global__builder="docker:go"))["/global/builder"]
    )
    assert (
        "unknown runner" in problems(composition(global__runner="local:docker"))["/global/runner"]
    )
    assert "no case 'chat'" in problems(composition(global__case="chat"))["/global/case"]
    data = composition()
    data["groups"][1]["run"] = {"test_params": {"volume": "11"}}
    assert "unknown parameter" in problems(data)["/groups/1/run/test_params/volume"]


def test_a_runner_the_manifest_does_not_enable_is_refused() -> None:
    found = problems(composition(global__runner="cluster:agents"))
    assert "does not enable" in found["/global/runner"]


def test_param_types_are_checked() -> None:
    data = composition()
    data["groups"][0]["run"]["test_params"] = {"rounds": "many", "loud": "perhaps"}
    found = problems(data)
    assert "integer" in found["/groups/0/run/test_params/rounds"]
    assert "true or false" in found["/groups/0/run/test_params/loud"]


def test_more_instances_than_the_manifest_allows() -> None:
    data = composition(global__total_instances=12)
    data["groups"][0]["instances"] = {"count": 11}
    assert "2 to 10" in problems(data)["/global/total_instances"]


def test_structural_errors_and_wrapped_compositions_are_located() -> None:
    found = problems({"composition": composition(groups=[{"id": "a", "instances": {"count": -1}}])})
    assert any(location.startswith("/composition/groups/0/instances/count") for location in found)
    found = problems(composition(global__run_config={"timeout": "soon"}))
    assert "/global/run_config/timeout" in found
    found = problems(composition(groups__0__resources={"cpu": "lots", "memory": "1Gi"}))
    assert "CPU amount" in found["/groups/0/resources/cpu"]


def test_toml_compositions_are_accepted() -> None:
    text = b"""
[global]
plan = "demo"
case = "talk"
total_instances = 2
[[groups]]
id = "only"
[groups.instances]
count = 2
"""
    parsed, prefix = parse_composition(text, "application/toml")
    assert resolve(parsed, MANIFEST, prefix).groups[0].count == 2
    with pytest.raises(ApiError) as refused:
        parse_composition(b"[global\nplan=", "application/toml")
    assert refused.value.status == 400


def test_resource_amounts() -> None:
    assert parse_memory("256Mi") == 256 * 2**20 and parse_memory("1G") == 10**9
    assert parse_cpu("500m") == 0.5 and parse_cpu("2") == 2.0
    with pytest.raises(ValueError):
        parse_memory("a lot")
