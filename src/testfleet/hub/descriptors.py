"""Turn a submitted body (JSON or YAML, ours or ConTest's) into a checked JobDescriptor."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import yaml
from pydantic import ValidationError

from testfleet.hub.errors import ApiError, json_pointer
from testfleet.hub.reporters import check_reporter
from testfleet.protocol.api import ErrorDetail
from testfleet.protocol.contest import ContestMappingError, from_contest, is_contest_descriptor
from testfleet.protocol.descriptor import JobDescriptor
from testfleet.protocol.documents import DocumentProblem, check_document
from testfleet.protocol.expansion import ExpansionError, expand
from testfleet.steps.registry import UnknownPlugin, validate_params

MAX_DESCRIPTOR_BYTES = 1_000_000
"""The largest descriptor accepted, as sent and as stored (YAML aliases expanded)."""
MAX_STEPS = 10_000
"""Steps of all tests of a job together."""
_YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")


INLINE_BYTES = 64 * 1024
"""JSON bodies up to this size are checked on the event loop; larger ones, and every YAML
body (a few aliases can stand for a large document), in a worker thread, so that checking
them never stalls the hub's other work."""


async def read_descriptor(
    raw: bytes,
    content_type: str,
    params: dict[str, Any] | None = None,
    override_location: Callable[[str], str] | None = None,
) -> JobDescriptor:
    """Decode and check a submitted body (see `parse_body` and `check_descriptor`)."""

    def read() -> JobDescriptor:
        return check_descriptor(parse_body(raw, content_type), params, override_location)

    if len(raw) <= INLINE_BYTES and not _is_yaml(content_type):
        return read()
    return await asyncio.to_thread(read)


def _is_yaml(content_type: str) -> bool:
    return content_type.split(";")[0].strip().lower() in _YAML_TYPES


def parse_body(raw: bytes, content_type: str) -> Any:
    """Decode the body as YAML or JSON by its content type (JSON when none is given)."""
    if len(raw) > MAX_DESCRIPTOR_BYTES:
        raise ApiError(
            413,
            "too_large",
            f"a descriptor may be at most {MAX_DESCRIPTOR_BYTES} bytes; got {len(raw)}",
        )
    if not raw.strip():
        raise ApiError(400, "malformed_body", "the request body is empty: send a job descriptor")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ApiError(
            400, "malformed_body", f"the body is not UTF-8 (byte {error.start})"
        ) from None
    if _is_yaml(content_type):
        try:
            return yaml.safe_load(text)
        except RecursionError:
            raise ApiError(400, "malformed_body", "the YAML is nested too deeply") from None
        except ValueError as error:  # e.g. an integer with more digits than Python converts
            raise ApiError(400, "malformed_body", f"invalid YAML: {error}") from None
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            raise ApiError(400, "malformed_body", f"invalid YAML{where}: {error}") from None
    try:
        return json.loads(text)
    except RecursionError:
        raise ApiError(400, "malformed_body", "the JSON is nested too deeply") from None
    except json.JSONDecodeError as error:
        raise ApiError(
            400,
            "malformed_body",
            f"invalid JSON at line {error.lineno}, column {error.colno}: {error.msg}",
        ) from None
    except ValueError as error:  # e.g. an integer with more digits than Python converts
        raise ApiError(400, "malformed_body", f"invalid JSON: {error}") from None


def check_descriptor(
    data: Any,
    params: dict[str, Any] | None = None,
    override_location: Callable[[str], str] | None = None,
) -> JobDescriptor:
    """Validate a decoded document, apply `params` (overrides of its parameters) and expand
    its matrices; every problem found is reported with its location.

    The document's size is bounded first (depth, values, text, NUL characters, 64-bit
    integers; YAML aliases counted as expanded), then the expanded descriptor's (steps,
    bytes)."""
    try:
        check_document(data)
    except DocumentProblem as problem:
        raise ApiError(
            422,
            "invalid_descriptor",
            str(problem),
            [ErrorDetail(location=problem.location or "/", message=problem.message)],
        ) from None
    if not isinstance(data, dict):
        raise ApiError(
            422,
            "invalid_descriptor",
            "a job descriptor must be a JSON/YAML object",
            [ErrorDetail(location="/", message="expected an object")],
        )
    if is_contest_descriptor(data):
        try:
            data = from_contest(data)
        except ContestMappingError as error:
            raise ApiError(
                422,
                "invalid_descriptor",
                f"{error.location}: {error.message}",
                [ErrorDetail(location=error.location, message=error.message)],
            ) from None
    templated = _templated_header(data)  # a name or tags with ${{ }}: checked once expanded
    stand_in: dict[str, Any] = {"name": "templated", "tags": []}
    try:
        descriptor = JobDescriptor.model_validate(
            {**data, **{key: stand_in[key] for key in templated}}
        )
    except ValidationError as error:
        details = [
            ErrorDetail(location=json_pointer(e["loc"]), message=e["msg"]) for e in error.errors()
        ]
        raise ApiError(
            422, "invalid_descriptor", f"{details[0].location}: {details[0].message}", details
        ) from None
    descriptor = apply_params(
        descriptor, params or {}, override_location, {k: data[k] for k in templated}
    )
    details = _check_size(descriptor) + _check_plugins(descriptor) + _check_reporters(descriptor)
    if details:
        raise ApiError(
            422, "invalid_descriptor", f"{details[0].location}: {details[0].message}", details
        )
    return descriptor


def _check_size(descriptor: JobDescriptor) -> list[ErrorDetail]:
    steps = sum(len(test.steps) for test in descriptor.tests)
    if steps > MAX_STEPS:
        message = f"a job may have at most {MAX_STEPS} steps in all its tests; this has {steps}"
        return [ErrorDetail(location="/tests", message=message)]
    size = len(descriptor.model_dump_json())
    if size > MAX_DESCRIPTOR_BYTES:
        message = f"the descriptor is {size} bytes once expanded; at most {MAX_DESCRIPTOR_BYTES}"
        return [ErrorDetail(location="/", message=message)]
    return []


def param_overrides(pairs: list[str]) -> dict[str, str]:
    """`["version=1.2"]` -> `{"version": "1.2"}`; 422 naming a pair without a name."""
    overrides: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            message = f"{pair!r}: give a parameter as NAME=VALUE"
            raise ApiError(
                422,
                "invalid_request",
                message,
                [ErrorDetail(location="query.param", message=message)],
            )
        overrides[name.strip()] = value
    return overrides


def _templated_header(data: dict[str, Any]) -> list[str]:
    """Which of the job's name and tags refer to parameters (`${{ params.x }}`)."""
    found = []
    if "${{" in str(data.get("name", "")):
        found.append("name")
    tags = data.get("tags")
    if isinstance(tags, list) and any("${{" in str(tag) for tag in tags):
        found.append("tags")
    return found


def apply_params(
    descriptor: JobDescriptor,
    params: dict[str, Any],
    override_location: Callable[[str], str] | None = None,
    header: dict[str, Any] | None = None,
) -> JobDescriptor:
    """Parameters resolved and matrices expanded (`protocol/expansion.py`), checked again;
    `header` holds the name and tags as written when they refer to parameters."""
    plain = not params and not descriptor.params and not header
    if plain and not any(t.matrix for t in descriptor.tests):
        return descriptor
    options = {"override_location": override_location} if override_location else {}
    try:
        written = {**descriptor.model_dump(mode="json"), **(header or {})}
        expanded = expand(written, params, **options)
        return JobDescriptor.model_validate(expanded)
    except ExpansionError as error:
        details = [ErrorDetail(location=where, message=why) for where, why in error.problems]
    except ValidationError as error:
        details = [
            ErrorDetail(location=json_pointer(e["loc"]), message=f"after expansion: {e['msg']}")
            for e in error.errors()
        ]
    raise ApiError(
        422, "invalid_descriptor", f"{details[0].location}: {details[0].message}", details
    )


def _check_plugins(descriptor: JobDescriptor) -> list[ErrorDetail]:
    details: list[ErrorDetail] = []
    for t, test in enumerate(descriptor.tests):
        for s, step in enumerate(test.steps):
            where = ("tests", t, "steps", s)
            try:
                result = validate_params(step.plugin, step.params)
            except UnknownPlugin as error:
                details.append(
                    ErrorDetail(location=json_pointer((*where, "plugin")), message=str(error))
                )
                continue
            if isinstance(result, list):
                details.extend(
                    ErrorDetail(
                        location=json_pointer((*where, "params", *problem.path)),
                        message=problem.message,
                    )
                    for problem in result
                )
    return details


def _check_reporters(descriptor: JobDescriptor) -> list[ErrorDetail]:
    details: list[ErrorDetail] = []
    for key in ("run_reporters", "final_reporters"):
        for index, spec in enumerate(getattr(descriptor.reporting, key)):
            problem = check_reporter(spec.name, spec.params)
            if problem is not None:
                where, message = problem
                details.append(
                    ErrorDetail(
                        location=json_pointer(("reporting", key, index, *where)), message=message
                    )
                )
    return details
