"""The endpoints of the HTTP API as plain request descriptions (no I/O).

The sync and async clients send these and apply `parse` to the response, so each endpoint's
path, parameters and answer type are written down once.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

import httpx

from testfleet.client import responses
from testfleet.protocol.api import (
    Acknowledged,
    AgentList,
    DeviceList,
    EventList,
    JobCreated,
    JobList,
    JobStatus,
    Role,
    TokenCreated,
    TokenList,
    VersionInfo,
)
from testfleet.protocol.descriptor import JobDescriptor

T = TypeVar("T")

API = "/api/v1"
JSON = "application/json"
YAML = "application/yaml"

Descriptor = Mapping[str, Any] | str | JobDescriptor
"""What `start` accepts: a dict, a JSON or YAML text, or a `JobDescriptor`."""

Params = list[tuple[str, str | int | float | bool | None]]
"""Query parameters, in order (keys may repeat)."""


@dataclass(frozen=True)
class Call(Generic[T]):
    """One request and how to read its answer."""

    method: str
    path: str
    parse: Callable[[httpx.Response], T]
    params: Params = field(default_factory=list)
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)


def version() -> Call[VersionInfo]:
    """`GET /api/v1/version`."""
    return Call("GET", f"{API}/version", lambda r: responses.parse_model(r, VersionInfo))


def start(descriptor: Descriptor) -> Call[int]:
    """`POST /api/v1/jobs`: the new job's id."""
    content, content_type = encode_descriptor(descriptor)
    return Call(
        "POST", f"{API}/jobs", _job_id, content=content, headers={"Content-Type": content_type}
    )


def status(job_id: int) -> Call[JobStatus]:
    """`GET /api/v1/jobs/{id}`."""
    return Call("GET", f"{API}/jobs/{job_id}", lambda r: responses.parse_model(r, JobStatus))


def stop(job_id: int) -> Call[Acknowledged]:
    """`POST /api/v1/jobs/{id}/stop`."""
    return Call(
        "POST", f"{API}/jobs/{job_id}/stop", lambda r: responses.parse_model(r, Acknowledged)
    )


def retry(job_id: int) -> Call[int]:
    """`POST /api/v1/jobs/{id}/retry`: the new job's id."""
    return Call("POST", f"{API}/jobs/{job_id}/retry", _job_id)


def list_jobs(
    states: Iterable[str] = (),
    tags: Iterable[str] = (),
    requestor: str | None = None,
    name: str | None = None,
    created_after: datetime | str | None = None,
    created_before: datetime | str | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> Call[JobList]:
    """`GET /api/v1/jobs` with its filters (`states` and `tags` may repeat)."""
    params: Params = [("state", str(state)) for state in states]
    params += [("tag", tag) for tag in tags]
    optional = {
        "requestor": requestor,
        "name": name,
        "created_after": format_time(created_after),
        "created_before": format_time(created_before),
        "limit": None if limit is None else str(limit),
        "cursor": cursor,
    }
    params += [(key, value) for key, value in optional.items() if value is not None]
    return Call("GET", f"{API}/jobs", lambda r: responses.parse_model(r, JobList), params=params)


def events(job_id: int, after: int = 0, limit: int | None = None) -> Call[EventList]:
    """`GET /api/v1/jobs/{id}/events`: one page."""
    params: Params = [("after", str(after))]
    if limit is not None:
        params.append(("limit", str(limit)))
    return Call(
        "GET",
        f"{API}/jobs/{job_id}/events",
        lambda r: responses.parse_model(r, EventList),
        params=params,
    )


def follow(job_id: int, after: int = 0) -> Call[None]:
    """`GET /api/v1/jobs/{id}/events?follow=true`: a server-sent event stream (read it streamed)."""
    return Call(
        "GET",
        f"{API}/jobs/{job_id}/events",
        responses.parse_nothing,
        params=[("follow", "true"), ("after", str(after))],
        headers={"Accept": "text/event-stream", "Cache-Control": "no-cache"},
    )


def logs(job_id: int, task_id: int | None = None, step: int | None = None) -> Call[str]:
    """`GET /api/v1/jobs/{id}/logs`: the log text."""
    params: Params = []
    if task_id is not None:
        params.append(("task_id", str(task_id)))
    if step is not None:
        params.append(("step", str(step)))
    return Call(
        "GET",
        f"{API}/jobs/{job_id}/logs",
        responses.parse_text,
        params=params,
        headers={"Accept": "text/plain"},
    )


def agents() -> Call[AgentList]:
    """`GET /api/v1/agents`."""
    return Call("GET", f"{API}/agents", lambda r: responses.parse_model(r, AgentList))


def devices(
    *,
    capabilities: Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
    agent: str | None = None,
    state: str | None = None,
    kind: str | None = None,
) -> Call[DeviceList]:
    """`GET /api/v1/devices`, filtered (capabilities and labels: every one must hold)."""
    params: Params = [("capability", f"{k}={v}") for k, v in (capabilities or {}).items()]
    params += [("label", f"{k}={v}") for k, v in (labels or {}).items()]
    params += [(k, v) for k, v in (("agent", agent), ("state", state), ("kind", kind)) if v]
    return Call(
        "GET", f"{API}/devices", lambda r: responses.parse_model(r, DeviceList), params=params
    )


def create_token(name: str, role: Role) -> Call[TokenCreated]:
    """`POST /api/v1/tokens`: the answer carries the secret, once."""
    body = {"name": name, "role": role}
    return Call(
        "POST",
        f"{API}/tokens",
        lambda r: responses.parse_model(r, TokenCreated),
        content=json.dumps(body).encode(),
        headers={"Content-Type": JSON},
    )


def list_tokens() -> Call[TokenList]:
    """`GET /api/v1/tokens`."""
    return Call("GET", f"{API}/tokens", lambda r: responses.parse_model(r, TokenList))


def revoke_token(token_id: int) -> Call[None]:
    """`DELETE /api/v1/tokens/{id}`."""
    return Call("DELETE", f"{API}/tokens/{token_id}", responses.parse_nothing)


def encode_descriptor(descriptor: Descriptor) -> tuple[bytes, str]:
    """The request body and its content type: a text is sent as written (JSON or YAML)."""
    if isinstance(descriptor, JobDescriptor):
        return descriptor.model_dump_json().encode(), JSON
    if isinstance(descriptor, str):
        try:
            json.loads(descriptor)
        except ValueError:
            return descriptor.encode(), YAML
        return descriptor.encode(), JSON
    return json.dumps(dict(descriptor)).encode(), JSON


def format_time(value: datetime | str | None) -> str | None:
    """RFC 3339 in UTC for a datetime (naive means UTC); a string is passed through."""
    if value is None or isinstance(value, str):
        return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _job_id(response: httpx.Response) -> int:
    return responses.parse_model(response, JobCreated).job_id
