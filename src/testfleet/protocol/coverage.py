"""Drill4J's coverage session messages between the hub and a probe (seed 000), name for name
and field for field, plus the probe's registration and build announcement.

One WebSocket per probe (`/api/v1/coverage/probes/connect`), one JSON object per text frame.
The Drill4J messages keep their camelCase fields. testfleet adds an optional `seq` to what a
probe sends (the wire rule of docs/architecture.md: the probe numbers its messages, keeps them
until the hub's `ACK`, and sends them again after a reconnect); a message without `seq` is
accepted and simply not acknowledged.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

MAX_PART_OBJECTS = 65_535
"""At most this many ExecClassData in one COVERAGE_DATA_PART (Drill4J's chunk size)."""

MAX_PROBES_PER_CLASS = 1_000_000
PROBE_WS_PATH = "/api/v1/coverage/probes/connect"
TEST_NAME_HEADERS = ("drill-test-name", "x-test-name")
"""Request headers whose value names the test a request belongs to (case-insensitive)."""

Name = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][\w.:@+-]*$")]
"""An application, build or probe name: letters, digits and `._-:@+`."""


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---- the build: modules as "classes" ---------------------------------------------------------


class AstFunction(_Message):
    """A function (or method) of a module: its probes are `probes[first:first + count]` of
    its class; `checksum` hashes its body, so a moved or reformatted function keeps it."""

    name: str = Field(min_length=1, max_length=500, description="Qualified name, e.g. Cart.add")
    line: int = Field(ge=1, description="The line of its `def` (or first decorator)")
    endLine: int = Field(ge=1)
    first: int = Field(ge=0, description="Index of its first probe in the class")
    count: int = Field(ge=0, description="How many probes it has")
    checksum: str = Field(min_length=1, max_length=64)


class AstClass(_Message):
    """A module of the application: a "class" in Drill4J's words. Its probes are its
    executable lines, in order (probe i is line `lines[i]`), then its branch arcs when
    branches are measured."""

    id: int = Field(description="A checksum of the module's source (Drill4J's class id)")
    name: str = Field(min_length=1, max_length=1000, description="Path relative to the root")
    lines: list[int] = Field(max_length=MAX_PROBES_PER_CLASS)
    arcs: list[tuple[int, int]] = Field(
        default_factory=list,
        max_length=MAX_PROBES_PER_CLASS,
        description="testfleet: with branch measurement, the possible branch arcs (from "
        "line, to line; negative: leaving the code object); probe len(lines) + i is arcs[i]",
    )
    functions: list[AstFunction] = Field(default_factory=list)
    source: str | None = Field(default=None, description="testfleet: the text, for source views")


# ---- probe -> hub ----------------------------------------------------------------------------


class _Numbered(_Message):
    seq: int | None = Field(default=None, ge=1, description="testfleet: numbered for ACK")


class ProbeRegister(_Message):
    """The first message of a probe's connection."""

    type: Literal["REGISTER"] = "REGISTER"
    agentId: Name = Field(description="This probe's id, unique per running process")
    instanceId: str = Field(min_length=1, max_length=100)
    app: Name
    build: Name
    parentBuild: Name | None = Field(default=None, description="The build this one follows")
    buildChecksum: str = Field(min_length=1, max_length=64)
    classesCount: int = Field(ge=0)
    wireVersion: int
    sessions: list[str] = Field(
        default_factory=list, description="Sessions this probe still holds open"
    )


class InitDataPart(_Message):
    """Some of the build's classes, sent after REGISTER when the hub asks for them."""

    type: Literal["INIT_DATA_PART"] = "INIT_DATA_PART"
    astEntities: list[AstClass] = Field(max_length=MAX_PART_OBJECTS)


class ProbeInitialized(_Message):
    """Every class of the build has been sent."""

    type: Literal["INITIALIZED"] = "INITIALIZED"
    msg: str = "Initialized"


class ExecClassData(_Message):
    """The probes of one class hit in a session, for one test."""

    id: int
    className: str = Field(min_length=1, max_length=1000)
    probes: list[bool] = Field(max_length=MAX_PROBES_PER_CLASS)
    testName: str = Field(default="", max_length=1000)
    testId: str = Field(default="", max_length=100)


class SessionStarted(_Numbered):
    """The probe began collecting for a session."""

    type: Literal["SESSION_STARTED"] = "SESSION_STARTED"
    sessionId: str
    testType: str
    isRealtime: bool = False
    ts: int = Field(description="Milliseconds since the epoch")


class SessionCancelled(_Numbered):
    """The probe dropped a session's data."""

    type: Literal["SESSION_CANCELLED"] = "SESSION_CANCELLED"
    sessionId: str
    ts: int


class SessionsCancelled(_Numbered):
    """CANCEL_ALL done."""

    type: Literal["SESSIONS_CANCELLED"] = "SESSIONS_CANCELLED"
    ids: list[str]
    ts: int


class CoverDataPart(_Numbered):
    """Probes hit since the last part, only for the classes touched."""

    type: Literal["COVERAGE_DATA_PART"] = "COVERAGE_DATA_PART"
    sessionId: str
    data: list[ExecClassData] = Field(max_length=MAX_PART_OBJECTS)


class SessionChanged(_Numbered):
    """A realtime session's probe count changed."""

    type: Literal["SESSION_CHANGED"] = "SESSION_CHANGED"
    sessionId: str
    probeCount: int = Field(ge=0)


class SessionFinished(_Numbered):
    """The probe sent every part of a stopped session."""

    type: Literal["SESSION_FINISHED"] = "SESSION_FINISHED"
    sessionId: str
    ts: int


class SessionsFinished(_Numbered):
    """STOP_ALL done: every part of these sessions was sent."""

    type: Literal["SESSIONS_FINISHED"] = "SESSIONS_FINISHED"
    ids: list[str]
    ts: int


class ProbeHeartbeat(_Message):
    """Keeps the connection marked alive."""

    type: Literal["HEARTBEAT"] = "HEARTBEAT"


CoverMessage = (
    SessionStarted
    | SessionCancelled
    | SessionsCancelled
    | CoverDataPart
    | SessionChanged
    | SessionFinished
    | SessionsFinished
)
"""The Drill4J messages a probe sends about sessions."""

ProbeMessageModel = ProbeRegister | InitDataPart | ProbeInitialized | ProbeHeartbeat | CoverMessage
PROBE_MESSAGES: TypeAdapter[ProbeMessageModel] = TypeAdapter(
    Annotated[ProbeMessageModel, Field(discriminator="type")]
)
PROBE_MESSAGE_TYPES = (
    "REGISTER",
    "INIT_DATA_PART",
    "INITIALIZED",
    "HEARTBEAT",
    "SESSION_STARTED",
    "SESSION_CANCELLED",
    "SESSIONS_CANCELLED",
    "COVERAGE_DATA_PART",
    "SESSION_CHANGED",
    "SESSION_FINISHED",
    "SESSIONS_FINISHED",
)

# ---- hub -> probe ----------------------------------------------------------------------------


class StartSessionPayload(_Message):
    """What START_AGENT_SESSION carries."""

    sessionId: str = Field(min_length=1, max_length=100)
    testType: str = Field(default="MANUAL", min_length=1, max_length=50)
    testName: str | None = Field(default=None, max_length=1000)
    isRealtime: bool = False
    isGlobal: bool = False


class AgentSessionPayload(_Message):
    """A session id."""

    sessionId: str = Field(min_length=1, max_length=100)


class AgentSessionDataPayload(_Message):
    """Data for a running session (testfleet: `{"testName": ...}` names the current test)."""

    sessionId: str = Field(min_length=1, max_length=100)
    data: str = Field(max_length=100_000)


class StartAgentSession(_Message):
    """Begin collecting for a session."""

    type: Literal["START_AGENT_SESSION"] = "START_AGENT_SESSION"
    payload: StartSessionPayload


class AddAgentSessionData(_Message):
    """Data for a running session."""

    type: Literal["ADD_SESSION_DATA"] = "ADD_SESSION_DATA"
    payload: AgentSessionDataPayload


class StopAgentSession(_Message):
    """Send the rest of a session's probes, then SESSION_FINISHED."""

    type: Literal["STOP"] = "STOP"
    payload: AgentSessionPayload


class StopAllAgentSessions(_Message):
    """Finish every session (SESSIONS_FINISHED)."""

    type: Literal["STOP_ALL"] = "STOP_ALL"


class CancelAgentSession(_Message):
    """Drop a session's data (SESSION_CANCELLED)."""

    type: Literal["CANCEL"] = "CANCEL"
    payload: AgentSessionPayload


class CancelAllAgentSessions(_Message):
    """Drop every session's data (SESSIONS_CANCELLED)."""

    type: Literal["CANCEL_ALL"] = "CANCEL_ALL"


class ProbeRegistered(_Message):
    """The hub's answer to REGISTER; `needClasses`: send the build (INIT_DATA_PART...)."""

    type: Literal["REGISTERED"] = "REGISTERED"
    serverId: str
    needClasses: bool
    flushInterval: float = Field(default=2.0, description="Seconds between parts")


class ProbeReady(_Message):
    """The build is known; sessions may start."""

    type: Literal["READY"] = "READY"


class ProbeAck(_Message):
    """Every message up to `seq` was handled."""

    type: Literal["ACK"] = "ACK"
    seq: int


class ProbeError(_Message):
    """Something the hub could not accept; `fatal` means the connection will close."""

    type: Literal["ERROR"] = "ERROR"
    code: str
    message: str
    location: str | None = None
    seq: int | None = Field(default=None, description="The refused message's seq")
    fatal: bool = False


AgentAction = (
    StartAgentSession
    | AddAgentSessionData
    | StopAgentSession
    | StopAllAgentSessions
    | CancelAgentSession
    | CancelAllAgentSessions
)
"""The Drill4J agent actions."""

HubToProbeModel = ProbeRegistered | ProbeReady | ProbeAck | ProbeError | AgentAction
HUB_TO_PROBE: TypeAdapter[HubToProbeModel] = TypeAdapter(
    Annotated[HubToProbeModel, Field(discriminator="type")]
)
