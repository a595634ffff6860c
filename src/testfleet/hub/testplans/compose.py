"""A submitted composition (JSON or TOML) checked against its plan's manifest: every problem
is reported with its location, and a good one becomes a `ResolvedRun`."""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from testfleet.hub.errors import ApiError, json_pointer
from testfleet.protocol.api import ErrorDetail
from testfleet.protocol.composition import Composition, RunConfig
from testfleet.protocol.manifest import BUILDERS, RUNNERS, Manifest, coerce_param

MAX_COMPOSITION_BYTES = 1_000_000
_MEMORY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(Ki|Mi|Gi|Ti|K|M|G|T|B)?\s*$")
_MEMORY_UNITS = {
    None: 1,
    "B": 1,
    "K": 1000,
    "M": 1000**2,
    "G": 1000**3,
    "T": 1000**4,
    "Ki": 1024,
    "Mi": 1024**2,
    "Gi": 1024**3,
    "Ti": 1024**4,
}
_CPU = re.compile(r"^\s*(?:(\d+(?:\.\d+)?)|(\d+)m)\s*$")
PYTHON_BUILD_KEYS = frozenset({"entry", "requirements"})


@dataclass(frozen=True)
class ResolvedGroup:
    """A group with its instance count, typed parameters and what each instance needs."""

    id: str
    count: int
    params: dict[str, Any]
    cpu: float
    memory: int
    run_config: RunConfig


@dataclass(frozen=True)
class ResolvedRun:
    """A checked composition: everything a build and a run need."""

    plan: str
    case: str
    builder: str
    runner: str
    build_config: dict[str, Any]
    total: int
    groups: tuple[ResolvedGroup, ...]
    run_config: RunConfig
    composition: dict[str, Any]


class Problems:
    """Problems found so far, each with its JSON pointer."""

    def __init__(self, prefix: tuple[Any, ...] = ()) -> None:
        self.prefix = prefix
        self.details: list[ErrorDetail] = []

    def add(self, where: tuple[Any, ...], message: str) -> None:
        """Record a problem at `where` (below the prefix)."""
        self.details.append(
            ErrorDetail(location=json_pointer((*self.prefix, *where)), message=message)
        )

    def raise_if_any(self) -> None:
        """422 with every problem, if there are any."""
        if self.details:
            first = self.details[0]
            raise ApiError(
                422, "invalid_composition", f"{first.location}: {first.message}", self.details
            )


def parse_memory(text: str) -> int:
    """Bytes from "256Mi", "1Gi", "512M", "1024"; ValueError otherwise."""
    match = _MEMORY.match(text)
    if not match:
        raise ValueError(f"{text!r} is not an amount of memory (e.g. '256Mi', '1Gi', '500M')")
    return int(float(match.group(1)) * _MEMORY_UNITS[match.group(2)])


def parse_cpu(text: str) -> float:
    """Cores from "0.5", "2" or "500m"; ValueError otherwise."""
    match = _CPU.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a CPU amount (e.g. '0.5', '2', '500m')")
    return float(match.group(1)) if match.group(1) else int(match.group(2)) / 1000


def parse_composition(raw: bytes, content_type: str) -> tuple[Composition, tuple[str, ...]]:
    """Decode (JSON, or TOML by content type) and validate; returns the composition and the
    pointer prefix of where it sat (`{"composition": {...}}` is accepted too)."""
    if len(raw) > MAX_COMPOSITION_BYTES:
        raise ApiError(
            413, "too_large", f"a composition may be at most {MAX_COMPOSITION_BYTES} bytes"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ApiError(
            400, "malformed_body", f"the composition is not UTF-8 (byte {error.start})"
        ) from None
    data = _decode(text, content_type)
    prefix: tuple[str, ...] = ()
    if (
        isinstance(data, dict)
        and set(data) <= {"composition", "manifest", "build_groups"}
        and "composition" in data
    ):
        data, prefix = data["composition"], ("composition",)
    if not isinstance(data, dict):
        problems = Problems(prefix)
        problems.add((), "a composition is an object with metadata, global and groups")
        problems.raise_if_any()
    try:
        return Composition.model_validate(data), prefix
    except ValidationError as error:
        problems = Problems(prefix)
        for item in error.errors():
            problems.add(tuple(item["loc"]), item["msg"])
        problems.raise_if_any()
        raise AssertionError("unreachable") from None


def _decode(text: str, content_type: str) -> Any:
    media = content_type.split(";")[0].strip().lower()
    if media in ("application/toml", "text/toml", "application/x-toml") or (
        media not in ("application/json", "") and not text.lstrip().startswith("{")
    ):
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            raise ApiError(400, "malformed_body", f"invalid TOML: {error}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        if not text.lstrip().startswith(("{", "[")):
            try:
                return tomllib.loads(text)
            except tomllib.TOMLDecodeError:
                pass
        raise ApiError(
            400,
            "malformed_body",
            f"invalid JSON at line {error.lineno}, column {error.colno}: {error.msg}",
        ) from None
    except (RecursionError, ValueError) as error:
        raise ApiError(400, "malformed_body", f"invalid JSON: {error}") from None


def resolve(
    composition: Composition, manifest: Manifest, prefix: tuple[str, ...] = ()
) -> ResolvedRun:
    """Check the composition against the manifest; 422 listing every problem."""
    problems = Problems(prefix)
    g = composition.global_
    builder = g.builder or manifest.defaults.builder
    runner = g.runner or manifest.defaults.runner
    if builder not in BUILDERS:
        problems.add(
            ("global", "builder"),
            f"unknown builder {builder!r}; this hub has: {', '.join(BUILDERS)}",
        )
    elif not manifest.supports_builder(builder):
        problems.add(
            ("global", "builder"), f"plan {manifest.name!r} does not enable builder {builder!r}"
        )
    if runner not in RUNNERS:
        problems.add(
            ("global", "runner"), f"unknown runner {runner!r}; this hub has: {', '.join(RUNNERS)}"
        )
    elif not manifest.supports_runner(runner):
        problems.add(
            ("global", "runner"), f"plan {manifest.name!r} does not enable runner {runner!r}"
        )
    for key in sorted(set(g.build_config) - PYTHON_BUILD_KEYS):
        problems.add(
            ("global", "build_config", key),
            f"unknown build setting; known: {sorted(PYTHON_BUILD_KEYS)}",
        )
    case = manifest.case(g.case)
    if case is None:
        known = ", ".join(c.name for c in manifest.testcases)
        problems.add(
            ("global", "case"), f"plan {manifest.name!r} has no case {g.case!r}; it has: {known}"
        )
    global_config = _run_config(g.run_config, ("global", "run_config"), problems)
    counts = _counts(composition, problems)
    total = g.total_instances or sum(counts)
    groups: list[ResolvedGroup] = []
    if case is not None:
        bounds = case.instances
        if not bounds.min <= total <= bounds.max:
            problems.add(
                ("global", "total_instances"),
                f"case {case.name!r} runs with {bounds.min} to {bounds.max} instances; "
                f"the composition asks for {total}",
            )
        global_params = _params(
            g.run.test_params, case.params, ("global", "run", "test_params"), problems, {}
        )
        defaults = {name: spec.default for name, spec in case.params.items()}
        for index, group in enumerate(composition.groups):
            where = ("groups", index)
            params = _params(
                group.run.test_params,
                case.params,
                (*where, "run", "test_params"),
                problems,
                {**defaults, **global_params},
            )
            config = _run_config(
                {**g.run_config, **group.run_config}, (*where, "run_config"), problems
            )
            cpu = _resource(parse_cpu, group.resources.cpu, (*where, "resources", "cpu"), problems)
            memory = _resource(
                parse_memory, group.resources.memory, (*where, "resources", "memory"), problems
            )
            groups.append(
                ResolvedGroup(
                    group.id, counts[index], params, float(cpu), int(memory), config or RunConfig()
                )
            )
    problems.raise_if_any()
    assert case is not None and global_config is not None
    return ResolvedRun(
        plan=manifest.name,
        case=case.name,
        builder=builder,
        runner=runner,
        build_config=dict(g.build_config),
        total=total,
        groups=tuple(groups),
        run_config=global_config,
        composition=composition.model_dump(mode="json", by_alias=True),
    )


def _counts(composition: Composition, problems: Problems) -> list[int]:
    """Each group's instance count; the sum must be total_instances (when it is given)."""
    total = composition.global_.total_instances
    counts: list[int] = []
    seen: set[str] = set()
    for index, group in enumerate(composition.groups):
        where = ("groups", index, "instances")
        if group.id in seen:
            problems.add(("groups", index, "id"), f"group id {group.id!r} is used twice")
        seen.add(group.id)
        count, share = group.instances.count, group.instances.percentage
        if count and share:
            problems.add(where, "give count or percentage, not both")
        elif share:
            if not total:
                problems.add((*where, "percentage"), "a percentage needs global.total_instances")
            count = round(share * total)
        if not count:
            problems.add(where, "a group needs at least one instance (count, or percentage)")
        counts.append(count)
    if total and composition.groups and sum(counts) != total:
        problems.add(
            ("global", "total_instances"),
            f"the groups add up to {sum(counts)} instances ({', '.join(map(str, counts))}), "
            f"not total_instances {total}",
        )
    return counts


def _params(
    given: dict[str, Any],
    specs: dict[str, Any],
    where: tuple[Any, ...],
    problems: Problems,
    base: dict[str, Any],
) -> dict[str, Any]:
    params = dict(base)
    for name, value in given.items():
        spec = specs.get(name)
        if spec is None:
            known = ", ".join(sorted(specs)) or "none"
            problems.add((*where, name), f"unknown parameter; the case has: {known}")
            continue
        try:
            params[name] = coerce_param(spec.type, value)
        except ValueError as error:
            problems.add((*where, name), f"{spec.type} parameter: {error}")
    return params


def _run_config(
    data: dict[str, Any], where: tuple[Any, ...], problems: Problems
) -> RunConfig | None:
    try:
        return RunConfig.model_validate(data)
    except ValidationError as error:
        for item in error.errors():
            problems.add((*where, *item["loc"]), item["msg"])
        return None


def _resource(parse: Any, text: str, where: tuple[Any, ...], problems: Problems) -> float:
    if not text:
        return 0
    try:
        return float(parse(text))
    except ValueError as error:
        problems.add(where, str(error))
        return 0
