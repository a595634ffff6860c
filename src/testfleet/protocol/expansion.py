"""Descriptor parameters and test matrices, expanded into a plain descriptor.

- `params: {version: "1.0", target: null}` declares parameters with defaults (null: required);
  a start overrides them (`-p version=1.2`, typed like the default).
- `matrix: {python: ["3.11", "3.12"], os: [linux, mac]}` on a test makes one test per
  combination, named after its values (`unit [python=3.11, os=linux]`).
- `${{ params.NAME }}` and `${{ matrix.NAME }}` are replaced in the job's name and tags and in
  each test's devices (labels, capabilities) and steps (params, artifacts); a string that is
  one reference alone takes the value's type. `$${{` stands for a literal `${{`.

Every problem is reported with its path in the submitted descriptor. Bounds keep expansion
small whatever the input: combinations per test, tests in all, and the expanded size.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable
from typing import Any

MAX_COMBINATIONS = 256
"""A test's matrix may expand into at most this many tests."""
MAX_TESTS = 1000
"""A job may hold at most this many tests after expansion."""
MAX_EXPANDED_BYTES = 5_000_000
MAX_NAME = 200

_REFERENCE = re.compile(r"\$?\$\{\{\s*([A-Za-z_]+)\.([A-Za-z0-9_.-]*)\s*\}\}")
Location = tuple[str | int, ...]
Problem = tuple[str, str]
"""(location, message); a location is a JSON pointer, or a query field for overrides."""


class ExpansionError(ValueError):
    """What is wrong, each problem with its location."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(f"{problems[0][0]}: {problems[0][1]}")
        self.problems = problems


def pointer(location: Location) -> str:
    """('tests', 0, 'name') -> '/tests/0/name'."""
    return "/" + "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in location)


def expand(
    data: dict[str, Any],
    overrides: dict[str, Any] | None = None,
    *,
    override_location: Callable[[str], str] = lambda name: pointer(("params", name)),
) -> dict[str, Any]:
    """The descriptor `data` (already checked as a descriptor) with parameters resolved and
    matrices expanded; ExpansionError lists every problem."""
    problems: list[Problem] = []
    params = _resolve(data.get("params") or {}, overrides or {}, override_location, problems)
    result = dict(data)
    result["params"] = params
    context = {"params": params}
    result["name"] = _substitute(data["name"], context, ("name",), problems)
    result["tags"] = _substitute(list(data.get("tags", [])), context, ("tags",), problems)
    tests: list[dict[str, Any]] = []
    for index, test in enumerate(data.get("tests", [])):
        for values in _combinations(test.get("matrix") or {}, index, problems):
            tests.append(_test(test, index, {**context, "matrix": values}, values, problems))
            if len(tests) > MAX_TESTS:
                problems.append(
                    (pointer(("tests",)), f"the matrices expand to more than {MAX_TESTS} tests")
                )
                raise ExpansionError(problems)
    result["tests"] = tests
    if problems:
        raise ExpansionError(problems)
    if len(json.dumps(result)) > MAX_EXPANDED_BYTES:
        raise ExpansionError([("/", f"the expanded descriptor is over {MAX_EXPANDED_BYTES} bytes")])
    return result


def _resolve(
    declared: dict[str, Any],
    overrides: dict[str, Any],
    where: Callable[[str], str],
    problems: list[Problem],
) -> dict[str, Any]:
    values = dict(declared)
    for name, value in overrides.items():
        if name not in declared:
            known = ", ".join(sorted(declared)) or "none"
            problems.append((where(name), f"unknown parameter {name!r}; declared: {known}"))
            continue
        converted = _typed(value, declared[name])
        if converted is None:
            kind = type(declared[name]).__name__
            problems.append((where(name), f"{value!r} is not a {kind} like the default"))
        else:
            values[name] = converted
    for name, value in values.items():
        if value is None:
            problems.append(
                (pointer(("params", name)), f"parameter {name!r} is required: give -p {name}=VALUE")
            )
    return values


def _typed(value: Any, default: Any) -> Any:
    """`value` (often a string from a command line) as the type of `default`."""
    if default is None or isinstance(default, str) or not isinstance(value, str):
        return value if not isinstance(default, bool) or isinstance(value, bool) else None
    try:
        if isinstance(default, bool):
            return {"true": True, "false": False}[value.strip().lower()]
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float):
            return float(value)
    except (KeyError, ValueError):
        return None
    return value


def _combinations(
    matrix: dict[str, list[Any]], index: int, problems: list[Problem]
) -> list[dict[str, Any]]:
    if not matrix:
        return [{}]
    count = 1
    for values in matrix.values():
        count *= max(1, len(values))
    if count > MAX_COMBINATIONS:
        problems.append(
            (
                pointer(("tests", index, "matrix")),
                f"{count} combinations; a matrix may expand to at most {MAX_COMBINATIONS}",
            )
        )
        return []
    axes = list(matrix)
    return [dict(zip(axes, combo, strict=True)) for combo in itertools.product(*matrix.values())]


def _test(
    test: dict[str, Any],
    index: int,
    context: dict[str, dict[str, Any]],
    values: dict[str, Any],
    problems: list[Problem],
) -> dict[str, Any]:
    expanded = {key: value for key, value in test.items() if key != "matrix"}
    if values:
        suffix = ", ".join(f"{key}={value}" for key, value in values.items())
        expanded["name"] = f"{test['name']} [{suffix}]"[:MAX_NAME]
    where: Location = ("tests", index)
    if "devices" in test:
        devices = dict(test["devices"])
        for key in ("labels", "capabilities"):
            if key in devices:
                devices[key] = _substitute(
                    devices[key], context, (*where, "devices", key), problems
                )
        expanded["devices"] = devices
    steps = []
    for number, step in enumerate(test.get("steps", [])):
        step = dict(step)
        for key in ("params", "artifacts"):
            if key in step:
                step[key] = _substitute(
                    step[key], context, (*where, "steps", number, key), problems
                )
        steps.append(step)
    expanded["steps"] = steps
    return expanded


def _substitute(
    value: Any, context: dict[str, dict[str, Any]], where: Location, problems: list[Problem]
) -> Any:
    if isinstance(value, dict):
        return {k: _substitute(v, context, (*where, k), problems) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, context, (*where, i), problems) for i, v in enumerate(value)]
    if not isinstance(value, str) or "${{" not in value:
        return value
    whole = _REFERENCE.fullmatch(value.strip())
    if whole is not None and not value.strip().startswith("$$"):
        return _lookup(whole, context, where, problems)

    def replace(match: re.Match[str]) -> str:
        if match.group(0).startswith("$$"):
            return match.group(0)[1:]
        found = _lookup(match, context, where, problems)
        return (
            "" if found is None else str(found).lower() if isinstance(found, bool) else str(found)
        )

    return _REFERENCE.sub(replace, value)


def _lookup(
    match: re.Match[str],
    context: dict[str, dict[str, Any]],
    where: Location,
    problems: list[Problem],
) -> Any:
    scope, name = match.group(1), match.group(2)
    values = context.get(scope)
    if values is None:
        kinds = "params" if "matrix" not in context else "params or matrix"
        problems.append(
            (pointer(where), f"{match.group(0)!r}: unknown reference; use {kinds}.NAME")
        )
        return None
    if scope == "matrix" and not values:
        problems.append((pointer(where), f"{match.group(0)!r}: this test has no matrix"))
        return None
    if name not in values:
        known = ", ".join(sorted(values)) or "none"
        problems.append((pointer(where), f"{match.group(0)!r} is not defined; {scope}: {known}"))
        return None
    return values[name]
