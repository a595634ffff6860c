"""Reporters: target_success judges the share (or number) of passed targets; noop passes."""

from __future__ import annotations

import pytest

from testfleet.hub.reporters import Outcome, check_reporter, report, target_success_passes
from testfleet.protocol.states import RunState


def outcomes(passed: int, failed: int = 0, other: RunState = RunState.FAILED) -> list[Outcome]:
    """`passed` passed targets, then `failed` ones in state `other`."""
    return [Outcome("t", f"a:slot-{i}", RunState.PASSED) for i in range(passed)] + [
        Outcome("t", f"b:slot-{i}", other) for i in range(failed)
    ]


@pytest.mark.parametrize(
    ("threshold", "passed", "total", "success"),
    [
        (">80%", 5, 5, True),
        (">80%", 9, 10, True),
        (">80%", 4, 5, False),  # exactly 80 % is not more than 80 %
        (">=80%", 4, 5, True),
        (">=95%", 19, 20, True),
        (">=95%", 18, 20, False),
        ("=100%", 3, 3, True),
        ("=100%", 2, 3, False),
        ("==100%", 7, 7, True),
        ("<50%", 1, 4, True),
        ("<50%", 2, 4, False),
        ("<=50%", 2, 4, True),
        (">=3", 3, 10, True),
        (">=3", 2, 3, False),
        (">0", 1, 100, True),
        ("=0", 0, 2, True),
    ],
)
def test_thresholds(threshold: str, passed: int, total: int, success: bool) -> None:
    assert target_success_passes({"threshold": threshold}, passed, total) is success
    result = report("target_success", {"threshold": threshold}, outcomes(passed, total - passed))
    assert result.success is success
    assert result.data == {"passed": passed, "total": total, "threshold": threshold}


def test_the_default_threshold_is_every_target() -> None:
    assert report("target_success", {}, outcomes(3)).success
    result = report("target_success", {}, outcomes(3, 1))
    assert not result.success
    assert result.data["threshold"] == "=100%"


@pytest.mark.parametrize(
    "state", [RunState.FAILED, RunState.INCOMPLETE, RunState.SKIPPED, RunState.CANCELLED]
)
def test_only_passed_targets_count(state: RunState) -> None:
    result = report("target_success", {"threshold": ">=50%"}, outcomes(1, 3, other=state))
    assert (result.success, result.data["passed"], result.data["total"]) == (False, 1, 4)


def test_the_message_explains_the_verdict() -> None:
    met = report("target_success", {"threshold": ">80%"}, outcomes(9, 1))
    assert met.name == "target_success"
    assert met.message == "9/10 targets passed (90.0%); threshold >80%: met"
    missed = report("target_success", {"threshold": ">80%"}, outcomes(4, 1))
    assert missed.message == "4/5 targets passed (80.0%); threshold >80%: not met"


@pytest.mark.parametrize("threshold", [">80%", "=100%", ">=0%", ">=1"])
def test_zero_targets_never_succeed_on_a_share_or_a_positive_count(threshold: str) -> None:
    # With no target at all there is nothing that passed: 0 % (and 0 targets).
    result = report("target_success", {"threshold": threshold}, [])
    expected = threshold == ">=0%"  # 0 % is at least 0 %
    assert result.success is expected
    assert result.data == {"passed": 0, "total": 0, "threshold": threshold}
    assert "0/0 targets passed (n/a)" in result.message


def test_noop_always_succeeds() -> None:
    for judged in ([], outcomes(0, 5), outcomes(5)):
        result = report("noop", {}, judged)
        assert (result.name, result.success) == ("noop", True)


@pytest.mark.parametrize(
    ("name", "params", "problem"),
    [
        ("noop", {}, None),
        ("target_success", {}, None),
        ("target_success", {"threshold": ">=95%"}, None),
        ("mail", {}, (("name",), "unknown reporter 'mail'; known reporters: noop, target_success")),
        ("noop", {"x": 1}, (("params",), "noop takes no params")),
        ("target_success", {"threshold": 80}, (("params", "threshold"), "must be a string")),
        ("target_success", {"threshold": "80%"}, (("params", "threshold"), "not a success")),
        ("target_success", {"threshold": ">101%"}, (("params", "threshold"), "exceed 100")),
        ("target_success", {"threshold": ">1", "z": 1}, (("params", "z"), "unknown param 'z'")),
    ],
)
def test_check_reporter(
    name: str, params: dict[str, object], problem: tuple[tuple[str, ...], str] | None
) -> None:
    found = check_reporter(name, params)
    if problem is None:
        assert found is None
        return
    assert found is not None
    assert found[0] == problem[0]
    assert problem[1] in found[1]
