"""The JSON bodies of the test plan API: Testground's daemon requests and testfleet's views."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from testfleet.protocol.manifest import Manifest


class TaskState(StrEnum):
    """A build or run task: scheduled -> processing -> complete | canceled."""

    SCHEDULED = "scheduled"
    PROCESSING = "processing"
    COMPLETE = "complete"
    CANCELED = "canceled"

    @property
    def finished(self) -> bool:
        """True once the task can change no more."""
        return self in (TaskState.COMPLETE, TaskState.CANCELED)


class InstanceState(StrEnum):
    """One instance of a run: scheduled, running, then its outcome."""

    SCHEDULED = "scheduled"
    RUNNING = "running"
    SUCCESS = "success"
    FAILURE = "failure"
    CRASH = "crash"
    CANCELED = "canceled"

    @property
    def finished(self) -> bool:
        """True once the instance has an outcome."""
        return self not in (InstanceState.SCHEDULED, InstanceState.RUNNING)


TaskType = Literal["build", "run"]
Outcome = Literal["success", "failure", "canceled"]


class TaskStateEntry(BaseModel):
    """When a task entered a state."""

    state: TaskState
    created: datetime


class GroupOutcome(BaseModel):
    """How many of a group's instances succeeded, of how many."""

    ok: int
    total: int


class RunResult(BaseModel):
    """A run task's result: a success only when every group is fully ok."""

    outcome: Outcome
    outcomes: dict[str, GroupOutcome]


class PlanTask(BaseModel):
    """A build or run task as Testground's daemon reports it; a run's id is its run_id."""

    id: str
    type: TaskType
    plan: str
    case: str
    runner: str
    builder: str
    states: list[TaskStateEntry]
    result: dict[str, Any] | None = None
    error: str | None = None
    requestor: str
    created: datetime
    job_id: int | None = None

    @property
    def state(self) -> TaskState:
        """The latest state."""
        return self.states[-1].state


class TaskCreated(BaseModel):
    """The answer to /build and /run."""

    task_id: str
    server_id: str


class TaskIdRequest(BaseModel):
    """`POST /status`."""

    model_config = ConfigDict(extra="forbid")

    task_id: str = Field(min_length=1, max_length=100)


class LogsRequest(TaskIdRequest):
    """`POST /logs`."""

    follow: bool = False


class TaskFilters(BaseModel):
    """`POST /tasks`: every filter is optional."""

    model_config = ConfigDict(extra="forbid")

    types: list[TaskType] = Field(default_factory=list)
    states: list[TaskState] = Field(default_factory=list)
    plan: str | None = None
    case: str | None = None
    before: datetime | None = None
    after: datetime | None = None
    limit: int = Field(100, ge=1, le=1000)


class TaskList(BaseModel):
    """The tasks a filter found, newest first."""

    server_id: str
    tasks: list[PlanTask]


class RunnerRequest(BaseModel):
    """`POST /terminate`."""

    model_config = ConfigDict(extra="forbid")

    runner: str = Field(min_length=1, max_length=100)


class OutputsRequest(RunnerRequest):
    """`POST /outputs`."""

    run_id: str = Field(min_length=1, max_length=100)


class HealthcheckRequest(RunnerRequest):
    """`POST /healthcheck`."""

    fix: bool = False


class HealthCheck(BaseModel):
    """One check of a runner's environment."""

    name: str
    status: Literal["ok", "failed", "omitted"]
    message: str


class HealthFix(BaseModel):
    """What a fix did."""

    name: str
    status: Literal["fixed", "failed", "unnecessary"]
    message: str


class HealthReport(BaseModel):
    """`POST /healthcheck`'s answer."""

    runner: str
    checks: list[HealthCheck]
    fixes: list[HealthFix] = Field(default_factory=list)


class Terminated(BaseModel):
    """`POST /terminate`'s answer: the tasks asked to stop."""

    runner: str
    tasks: list[str]


class PlanInfo(BaseModel):
    """A plan the hub knows (from `plan import` or `/build`)."""

    name: str
    source_hash: str
    source_size: int
    imported_at: datetime
    manifest: Manifest


class PlanList(BaseModel):
    """`GET /api/v1/plans`."""

    server_id: str
    plans: list[PlanInfo]


class InstanceInfo(BaseModel):
    """One instance of a run."""

    seq: int
    group_id: str
    group_seq: int
    agent: str | None
    state: InstanceState
    exit_code: int | None = None
    error: str | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None


class GroupInfo(BaseModel):
    """One group of a run with its outcome and instances."""

    id: str
    count: int
    params: dict[str, Any]
    ok: int
    instances: list[InstanceInfo]


class RunDetail(BaseModel):
    """`GET /api/v1/plan-runs/{run_id}`: everything a run page shows."""

    server_id: str
    task: PlanTask
    composition: dict[str, Any]
    groups: list[GroupInfo]


class InstanceReport(BaseModel):
    """What an agent reports of one instance it runs."""

    model_config = ConfigDict(extra="forbid")

    seq: int = Field(ge=1)
    state: InstanceState
    exit_code: int | None = None
    error: str | None = Field(None, max_length=20_000)


class InstanceReports(BaseModel):
    """`POST /api/v1/plan-runs/{run_id}/instances`."""

    model_config = ConfigDict(extra="forbid")

    agent: str | None = Field(None, description="The reporting agent: only its instances move.")
    reports: list[InstanceReport] = Field(min_length=1, max_length=10_000)


class SyncState(BaseModel):
    """A sync state: how many instances signalled it, and the barriers waiting on it here."""

    name: str
    count: int
    waiting: dict[int, int] = Field(
        default_factory=dict, description="target -> barriers waiting for it (on this hub)"
    )


class SyncTopic(BaseModel):
    """A topic and how many messages it holds."""

    name: str
    messages: int
    subscribers: int = 0


class SyncSnapshot(BaseModel):
    """The sync service's state of one run."""

    server_id: str
    run_id: str
    states: list[SyncState]
    topics: list[SyncTopic]
