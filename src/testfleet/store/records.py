"""What the store hands out: frozen, typed records instead of database rows.

Each record is built from a row by `from_row`, the only place that knows column names; the
hub reads attributes with types. JSON columns stay plain dicts and lists (true boundaries).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar, TypeVar

from sqlalchemy import Row

from testfleet.protocol.states import AgentState, DeviceState, JobState, RunState

R = TypeVar("R", bound="Record")


class Record:
    """A record built from a row whose column names are its fields; `states` names the
    fields that hold a state enum."""

    __slots__ = ()
    states: ClassVar[dict[str, type[StrEnum]]] = {}

    @classmethod
    def from_row(cls: type[R], row: Row[Any]) -> R:
        """The record of a row (extra selected columns, such as a joined agent name, must be
        fields too)."""
        values = dict(row._mapping)
        for name, enum in cls.states.items():
            values[name] = enum(values[name])
        return cls(**values)


@dataclass(frozen=True, slots=True)
class JobRecord(Record):
    """One job."""

    states: ClassVar[dict[str, type[StrEnum]]] = {"state": JobState}

    id: int
    name: str
    state: JobState
    requestor: str
    descriptor: dict[str, Any]
    tags: list[str]
    runs_requested: int
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    retried_from: int | None
    error: str | None
    final_reporters: list[dict[str, Any]] | None
    owner: str | None
    lease_expires_at: datetime | None
    stop_requested: bool


@dataclass(frozen=True, slots=True)
class RunRecord(Record):
    """One run of a job."""

    states: ClassVar[dict[str, type[StrEnum]]] = {"state": RunState}

    job_id: int
    number: int
    state: RunState
    started_at: datetime | None
    ended_at: datetime | None
    reporters: list[dict[str, Any]] | None


@dataclass(frozen=True, slots=True)
class TestRecord(Record):
    """One test of one run."""

    states: ClassVar[dict[str, type[StrEnum]]] = {"state": RunState}

    __test__ = False  # not a pytest class

    job_id: int
    run: int
    test_index: int
    name: str
    state: RunState
    attempts: int
    started_at: datetime | None
    ended_at: datetime | None
    error: str | None
    waiting: str | None = None


@dataclass(frozen=True, slots=True)
class TaskRecord(Record):
    """One device's pass through a test's steps; `agent_name` where the query joined it."""

    states: ClassVar[dict[str, type[StrEnum]]] = {"state": RunState}

    id: int
    job_id: int
    run: int
    test_index: int
    attempt: int
    device_id: str
    device_name: str
    agent_id: int
    state: RunState
    started_at: datetime | None = None
    ended_at: datetime | None = None
    error: str | None = None
    paused: str | None = None
    """Developer mode: why the task is paused (None: it is not)."""
    paused_step: int | None = None
    agent_name: str | None = None

    @property
    def finished(self) -> bool:
        """True once the task's state is final."""
        return self.state.finished


@dataclass(frozen=True, slots=True)
class StepRecord(Record):
    """One step of one task."""

    states: ClassVar[dict[str, type[StrEnum]]] = {"state": RunState}

    task_id: int
    idx: int
    name: str
    plugin: str
    state: RunState
    exit_code: int | None
    started_at: datetime | None
    ended_at: datetime | None
    error: str | None


@dataclass(frozen=True, slots=True)
class AgentRecord(Record):
    """One agent that registered at some time."""

    states: ClassVar[dict[str, type[StrEnum]]] = {"state": AgentState}

    id: int
    name: str
    instance_id: str | None
    state: AgentState
    version: str
    labels: dict[str, str]
    hub: str | None
    connected_at: datetime | None
    last_seen: datetime | None
    last_seq: int


@dataclass(frozen=True, slots=True)
class DeviceRecord(Record):
    """One device, with its agent's name and labels where the query joined them."""

    states: ClassVar[dict[str, type[StrEnum]]] = {"state": DeviceState}

    id: str
    agent_id: int
    name: str
    kind: str
    state: DeviceState
    capabilities: dict[str, Any]
    labels: dict[str, str]
    holder_job_id: int | None = None
    lease_expires_at: datetime | None = None
    claimed_at: datetime | None = None
    removed: bool = False
    changed_at: datetime | None = None
    url: str | None = None
    session_capabilities: dict[str, Any] | None = None
    holder_session_id: int | None = None
    last_used_at: datetime | None = None
    agent_name: str = ""
    agent_labels: dict[str, str] | None = None


@dataclass(frozen=True, slots=True)
class DriverSessionRecord(Record):
    """A WebDriver session through the gateway: queued, being created, live, or over."""

    id: int
    session_id: str | None
    state: str
    requestor: str
    requested: dict[str, Any]
    capabilities: dict[str, Any] | None
    priority: int
    device_id: str | None
    agent_id: int | None
    node_url: str | None
    browser: bool
    hub: str | None
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    last_command_at: datetime | None
    idle_timeout: int
    idle_expires_at: datetime | None
    commands: int
    end_reason: str | None
    agent_name: str | None = None
    has_screenshot: bool = False


@dataclass(frozen=True, slots=True)
class SessionCommandRecord(Record):
    """One command of a gateway session, as the hub forwarded it."""

    id: int
    session_id: int
    at: datetime
    method: str
    command: str
    status: int
    error: str | None
    duration_ms: float


@dataclass(frozen=True, slots=True)
class TokenRecord(Record):
    """One API token (its secret is never stored, only a hash of it)."""

    id: int
    name: str
    role: str
    secret_hash: str
    created_at: datetime
    created_by: str | None
    revoked_at: datetime | None
    agent_name: str | None = None
    """The one agent name an agent token may register as (None: not bound yet)."""


@dataclass(frozen=True, slots=True)
class StoredEvent(Record):
    """One stored event, with the sending agent's name (None for the hub's own)."""

    id: int
    kind: str
    job_id: int | None
    task_id: int | None
    agent_id: int | None
    agent_seq: int | None
    at: datetime
    data: dict[str, Any]
    agent_name: str | None = None


@dataclass(frozen=True, slots=True)
class LogChunkRecord:
    """One piece of a job's log output."""

    id: int
    task_id: int | None
    step_index: int | None
    text: str
