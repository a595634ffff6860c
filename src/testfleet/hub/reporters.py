"""Reporters: after each run and at the end of the job, decide success from task outcomes."""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from testfleet.protocol.api import ReporterResult
from testfleet.protocol.descriptor import parse_threshold
from testfleet.protocol.states import RunState

REPORTERS = ("noop", "target_success")
_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
}


@dataclass(frozen=True)
class Outcome:
    """The final state of one task (a target) that a reporter judges."""

    test: str
    device_id: str
    state: RunState


def check_reporter(name: str, params: dict[str, Any]) -> tuple[tuple[str | int, ...], str] | None:
    """None if the reporter and its params are fine, else (location, message)."""
    if name not in REPORTERS:
        return ("name",), f"unknown reporter {name!r}; known reporters: {', '.join(REPORTERS)}"
    if name == "noop":
        if params:
            return ("params",), "noop takes no params"
        return None
    extra = sorted(set(params) - {"threshold"})
    if extra:
        return ("params", extra[0]), f"unknown param {extra[0]!r}; target_success takes threshold"
    threshold = params.get("threshold", "=100%")
    if not isinstance(threshold, str):
        return ("params", "threshold"), "threshold must be a string such as '>80%'"
    try:
        parse_threshold(threshold)
    except ValueError as error:
        return ("params", "threshold"), str(error)
    return None


def target_success_passes(params: dict[str, Any], passed: int, total: int) -> bool:
    """Whether `passed` of `total` targets meet the threshold (default: all of them)."""
    op, value, percent = parse_threshold(params.get("threshold", "=100%"))
    measured = (100.0 * passed / total if total else 0.0) if percent else float(passed)
    return _OPERATORS[op](measured, value)


def report(name: str, params: dict[str, Any], outcomes: Sequence[Outcome]) -> ReporterResult:
    """Run one reporter over the outcomes."""
    if name == "noop":
        return ReporterResult(name=name, success=True, message="noop reporter")
    passed = sum(1 for o in outcomes if o.state == RunState.PASSED)
    total = len(outcomes)
    threshold = params.get("threshold", "=100%")
    success = target_success_passes(params, passed, total)
    share = f"{100.0 * passed / total:.1f}%" if total else "n/a"
    return ReporterResult(
        name=name,
        success=success,
        message=f"{passed}/{total} targets passed ({share}); threshold {threshold}: "
        + ("met" if success else "not met"),
        data={"passed": passed, "total": total, "threshold": threshold},
    )
