"""Descriptor parameters and matrices: substituted, typed, expanded, bounded; every problem
with its path."""

from __future__ import annotations

from typing import Any

import pytest

from testfleet.protocol.expansion import MAX_COMBINATIONS, ExpansionError, expand


def job(**test: Any) -> dict[str, Any]:
    base = {
        "name": "t",
        "steps": [
            {
                "name": "run",
                "plugin": "cmd",
                "params": {"executable": "python${{ matrix.python }}", "args": ["${{ params.n }}"]},
            }
        ],
    }
    return {
        "name": "j-${{ params.version }}",
        "tags": [],
        "params": {"version": "1.0", "n": 3},
        "tests": [{**base, **test}],
    }


def test_params_and_a_matrix_expand_into_one_test_per_combination() -> None:
    result = expand(
        job(
            matrix={"python": ["3.11", "3.12"], "os": ["linux", "mac"]},
            devices={"labels": {"os": "${{ matrix.os }}"}},
        ),
        {"version": "2.0", "n": "5"},
    )
    assert result["name"] == "j-2.0"
    assert result["params"] == {"version": "2.0", "n": 5}
    names = [t["name"] for t in result["tests"]]
    assert names == [
        "t [python=3.11, os=linux]",
        "t [python=3.11, os=mac]",
        "t [python=3.12, os=linux]",
        "t [python=3.12, os=mac]",
    ]
    first = result["tests"][0]
    assert first["devices"]["labels"] == {"os": "linux"}
    assert first["steps"][0]["params"] == {"executable": "python3.11", "args": [5]}
    assert "matrix" not in first


def test_unknown_params_and_unresolved_references_name_their_place() -> None:
    data = job()  # a matrix reference in a test without a matrix
    data["tests"][0]["steps"][0]["params"]["env"] = {"X": "${{ params.nope }}"}
    with pytest.raises(ExpansionError) as caught:
        expand(data, {"colour": "red", "n": "many"}, override_location=lambda n: f"query.param.{n}")
    assert caught.value.problems == [
        ("query.param.colour", "unknown parameter 'colour'; declared: n, version"),
        ("query.param.n", "'many' is not a int like the default"),
        (
            "/tests/0/steps/0/params/executable",
            "'${{ matrix.python }}': this test has no matrix",
        ),
        (
            "/tests/0/steps/0/params/env/X",
            "'${{ params.nope }}' is not defined; params: n, version",
        ),
    ]


def test_a_required_parameter_must_be_given() -> None:
    data = job(matrix={"python": ["3"]})
    data["params"]["target"] = None
    with pytest.raises(ExpansionError, match="/params/target: parameter 'target' is required"):
        expand(data)
    assert expand(data, {"target": "x"})["params"]["target"] == "x"


def test_a_matrix_may_not_expand_past_its_bound() -> None:
    axes = {f"a{i}": list(range(4)) for i in range(5)}  # 4**5 = 1024
    with pytest.raises(ExpansionError) as caught:
        expand(job(matrix=axes))
    assert caught.value.problems[0][0] == "/tests/0/matrix"
    assert f"at most {MAX_COMBINATIONS}" in caught.value.problems[0][1]


def test_a_doubled_dollar_keeps_the_text_literal() -> None:
    data = job(matrix={"python": ["3"]})
    data["tests"][0]["steps"][0]["params"]["args"] = ["echo $${{ not.expanded }} ${{ params.n }}"]
    result = expand(data)
    assert result["tests"][0]["steps"][0]["params"]["args"] == ["echo ${{ not.expanded }} 3"]
