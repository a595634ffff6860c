"""The coverage part of the HTTP API: Drill4J's admin actions and testfleet's reports."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

SessionState = Literal["active", "stopping", "finished", "cancelled"]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StartPayload(_Body):
    """START's payload; `sessionId` is generated when missing."""

    sessionId: str | None = Field(
        default=None, min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][\w.:@+-]*$"
    )
    testType: str = Field(default="MANUAL", min_length=1, max_length=50)
    testName: str | None = Field(default=None, max_length=1000)
    isRealtime: bool = False
    isGlobal: bool = False
    jobId: int | None = Field(default=None, description="testfleet: the job it belongs to")


class SessionPayload(_Body):
    """A session id."""

    sessionId: str = Field(min_length=1, max_length=100)


class SessionDataPayload(_Body):
    """ADD_SESSION_DATA's payload (testfleet: `data` = `{"testName": "..."}` names the test
    the application is running now)."""

    sessionId: str = Field(min_length=1, max_length=100)
    data: str = Field(max_length=100_000)


class StartNewSession(_Body):
    """Start a session."""

    type: Literal["START"]
    payload: StartPayload = Field(default_factory=StartPayload)


class StopSession(_Body):
    """Stop a session: the probes send what is left, the hub finishes it."""

    type: Literal["STOP"]
    payload: SessionPayload


class CancelSession(_Body):
    """Cancel a session: its data is discarded."""

    type: Literal["CANCEL"]
    payload: SessionPayload


class StopAllSessions(_Body):
    """Stop every active session."""

    type: Literal["STOP_ALL"]


class CancelAllSessions(_Body):
    """Cancel every active session."""

    type: Literal["CANCEL_ALL"]


class AddSessionData(_Body):
    """Pass data to a running session's probes."""

    type: Literal["ADD_SESSION_DATA"]
    payload: SessionDataPayload


Action = StartNewSession | StopSession | CancelSession | StopAllSessions | CancelAllSessions
ActionModel = Action | AddSessionData
ACTIONS: TypeAdapter[ActionModel] = TypeAdapter(Annotated[ActionModel, Field(discriminator="type")])


class Totals(BaseModel):
    """Covered and total probes (lines)."""

    covered: int
    total: int
    percent: float


class SessionInfo(BaseModel):
    """A coverage session."""

    sessionId: str
    app: str
    build: str
    agents: list[str]
    testType: str
    testName: str | None
    isRealtime: bool
    isGlobal: bool
    state: SessionState
    startedAt: datetime
    finishedAt: datetime | None
    startedBy: str
    jobId: int | None
    totals: Totals


class ActionResult(BaseModel):
    """What a dispatched action did."""

    action: str
    sessions: list[SessionInfo]


class SessionList(BaseModel):
    """Sessions, newest first."""

    sessions: list[SessionInfo]


class ProbeInfo(BaseModel):
    """A probe connected to this hub or another."""

    agent_id: str
    app: str
    build: str
    instance: str
    hub: str
    connected_at: datetime
    active_sessions: list[str]


class ProbeList(BaseModel):
    """`GET /api/v1/coverage/agents`."""

    agents: list[ProbeInfo]


class BuildInfo(BaseModel):
    """One version of an application."""

    app: str
    build: str
    parent: str | None
    classes: int
    functions: int
    probes: int
    created_at: datetime
    totals: Totals | None = Field(default=None, description="Over its sessions (one build only)")


class AppInfo(BaseModel):
    """An application under test, as its probes announced it."""

    app: str
    builds: int
    latest_build: str
    latest_at: datetime
    probes_connected: int


class AppList(BaseModel):
    """`GET /api/v1/coverage/apps`."""

    apps: list[AppInfo]


class BuildList(BaseModel):
    """Builds of applications, newest first."""

    builds: list[BuildInfo]


class FunctionCoverage(BaseModel):
    """One function in a report."""

    line: int
    end_line: int
    covered: int
    total: int
    percent: float


class FileCoverage(BaseModel):
    """One module in a report (branches: when the probe measured them)."""

    covered_lines: list[int]
    missing_lines: list[int]
    summary: Totals
    functions: dict[str, FunctionCoverage]
    executed_branches: list[tuple[int, int]] = Field(default_factory=list)
    missing_branches: list[tuple[int, int]] = Field(default_factory=list)


class TestFiles(BaseModel):
    """What one test covered."""

    totals: Totals
    files: dict[str, list[int]]


class Report(BaseModel):
    """`GET .../report?format=json`: coverage per file and function, and per test."""

    app: str
    build: str
    sessions: list[str]
    test: str | None
    totals: Totals
    files: dict[str, FileCoverage]
    tests: dict[str, TestFiles]


class SourceLine(BaseModel):
    """A line of a source view."""

    number: int
    text: str
    state: Literal["covered", "missed", "none"]


class SourceView(BaseModel):
    """A module's text with each executable line marked covered or missed."""

    app: str
    build: str
    path: str
    totals: Totals
    lines: list[SourceLine]
    tests: list[str] = Field(description="Tests that covered any line of this module")


class Risk(BaseModel):
    """A new or modified function of a build, and whether its sessions covered it."""

    path: str
    function: str
    kind: Literal["new", "modified"]
    line: int
    covered: int
    total: int
    tested: bool


class Risks(BaseModel):
    """`GET .../risks`: what changed since the parent build and what is still untested."""

    app: str
    build: str
    parent: str | None
    risks: list[Risk]
    total: int
    tested: int


class TestToRun(BaseModel):
    """A test of the parent build that touched a modified function."""

    name: str
    testType: str
    functions: list[str]


class TestsToRun(BaseModel):
    """`GET .../tests-to-run`."""

    app: str
    build: str
    parent: str | None
    tests: list[TestToRun]
