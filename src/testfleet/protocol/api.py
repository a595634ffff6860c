"""The JSON bodies of the HTTP API."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from testfleet.protocol.results import TestReport
from testfleet.protocol.states import AgentState, DeviceState, JobState, RunState


class ErrorDetail(BaseModel):
    """One problem with the input: where (a JSON pointer or field path) and what."""

    location: str
    message: str


class ErrorBody(BaseModel):
    """Every error response: a machine-readable code and a message for people."""

    code: str
    message: str
    errors: list[ErrorDetail] = Field(default_factory=list)
    server_id: str | None = None


class VersionInfo(BaseModel):
    """`GET /api/v1/version`."""

    version: int
    server_id: str
    package_version: str


class JobCreated(BaseModel):
    """The answer to Start and Retry."""

    job_id: int
    server_id: str
    retried_from: int | None = None


class Acknowledged(BaseModel):
    """The answer to an action that returns no data (Stop)."""

    job_id: int
    state: JobState
    server_id: str


class StepStatus(BaseModel):
    """One step of one task."""

    index: int
    name: str
    plugin: str
    state: RunState
    exit_code: int | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    error: str | None = None


class TaskStatus(BaseModel):
    """One device's pass through a test's steps."""

    task_id: int
    device_id: str
    device_name: str
    agent: str
    state: RunState
    attempt: int
    started_at: datetime | None = None
    ended_at: datetime | None = None
    error: str | None = None
    paused: str | None = Field(
        None, description="Developer mode: why the task is paused (null: it is not)."
    )
    paused_step: int | None = Field(
        None, description="The step it is paused before (or after, when that step failed)."
    )
    steps: list[StepStatus]


class ReporterResult(BaseModel):
    """What a reporter concluded."""

    name: str
    success: bool
    message: str
    data: dict[str, Any] = Field(default_factory=dict)


class TestStatus(BaseModel):
    """One test of one run, over all its attempts."""

    __test__ = False

    index: int
    name: str
    state: RunState
    attempts: int
    started_at: datetime | None = None
    ended_at: datetime | None = None
    error: str | None = None
    waiting: str | None = Field(
        None,
        description="While the test waits for devices: why, in words (no device could ever "
        "match, with what there is; or every matching device is taken).",
    )
    tasks: list[TaskStatus]


class RunStatus(BaseModel):
    """One repetition of the job's tests."""

    number: int
    state: RunState
    started_at: datetime | None = None
    ended_at: datetime | None = None
    tests: list[TestStatus]
    reporters: list[ReporterResult] = Field(default_factory=list)


class JobSummary(BaseModel):
    """A job as `List` shows it."""

    job_id: int
    name: str
    state: JobState
    requestor: str
    tags: list[str]
    created_at: datetime
    started_at: datetime | None = None
    ended_at: datetime | None = None
    retried_from: int | None = None
    error: str | None = None


class JobStatus(JobSummary):
    """The full status of one job (`GET /api/v1/jobs/{id}`)."""

    server_id: str
    runs_requested: int
    runs: list[RunStatus]
    final_reporters: list[ReporterResult] = Field(default_factory=list)
    descriptor: dict[str, Any]
    test_report: TestReport | None = Field(
        None, description="Test cases from the job's JUnit artifacts: counts, failed first."
    )


class JobList(BaseModel):
    """A page of jobs, newest first; pass `next_cursor` as `cursor` for the next page."""

    server_id: str
    jobs: list[JobSummary]
    next_cursor: str | None = None


class EventRecord(BaseModel):
    """An immutable, numbered record of something that happened."""

    id: int
    kind: str
    job_id: int | None = None
    task_id: int | None = None
    agent: str | None = None
    at: datetime
    data: dict[str, Any] = Field(default_factory=dict)


class EventList(BaseModel):
    """A page of events in order; `next_after` is the id to continue from."""

    server_id: str
    events: list[EventRecord]
    next_after: int


class DeviceInfo(BaseModel):
    """A device as the inventory shows it."""

    device_id: str
    name: str
    agent: str
    kind: str
    state: DeviceState
    capabilities: dict[str, Any]
    labels: dict[str, str]
    holder_job_id: int | None = None
    lease_expires_at: datetime | None = None
    claimed_at: datetime | None = None
    """Since when its holder has it (busy devices)."""
    url: str | None = Field(None, description="The device's WebDriver endpoint, if it has one.")
    holder_session_id: int | None = Field(
        None, description="The gateway session holding it (see /api/v1/sessions/{id})."
    )
    last_used_at: datetime | None = None


class AgentInfo(BaseModel):
    """A connected (or once connected) agent."""

    agent_id: int
    name: str
    state: AgentState
    version: str
    labels: dict[str, str]
    hub: str | None = None
    last_seen: datetime | None = None
    connected_at: datetime | None = None
    devices: int


class AgentList(BaseModel):
    """`GET /api/v1/agents`: a page of agents by name."""

    server_id: str
    agents: list[AgentInfo]
    next_cursor: str | None = None


class DeviceList(BaseModel):
    """`GET /api/v1/devices`: a page of devices by id."""

    server_id: str
    devices: list[DeviceInfo]
    next_cursor: str | None = None


Role = Literal["admin", "operator", "viewer", "agent"]


class TokenCreate(BaseModel):
    """`POST /api/v1/tokens`."""

    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]*$")
    role: Role
    agent: str | None = Field(
        None,
        min_length=1,
        max_length=100,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
        description="For an agent token: the one agent name it may register as (a live "
        "token for that name is revoked). Without it, the token is bound to the first name "
        "it registers with.",
    )

    @model_validator(mode="after")
    def _agent_only_for_agents(self) -> TokenCreate:
        if self.agent is not None and self.role != "agent":
            raise ValueError("agent is only for tokens of role 'agent'")
        return self


class TokenInfo(BaseModel):
    """A token as listed: never the secret."""

    token_id: int
    name: str
    role: Role
    created_at: datetime
    created_by: str | None = None
    revoked_at: datetime | None = None
    agent: str | None = None
    """For an agent token: the agent name it is bound to."""


class TokenCreated(TokenInfo):
    """The one response that carries the secret."""

    token: str


class TokenList(BaseModel):
    """`GET /api/v1/tokens`."""

    server_id: str
    tokens: list[TokenInfo]
