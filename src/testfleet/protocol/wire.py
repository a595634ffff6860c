"""Messages on the WebSocket between the hub and an agent: one JSON object per text frame.

Agent -> hub events carry `seq`, a number that belongs to the agent and keeps counting across
reconnects; the hub stores each (agent, seq) once and answers `ACK` with the highest stored.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from testfleet.protocol.states import RunState


def utcnow() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DeviceSpec(_Message):
    """A device an agent offers."""

    name: str = Field(min_length=1, max_length=200)
    kind: str = "host"
    capabilities: dict[str, Any] = Field(default_factory=dict)
    labels: dict[str, str] = Field(default_factory=dict)


# ---- agent -> hub ----------------------------------------------------------------------------


class Register(_Message):
    """The first message of a connection."""

    type: Literal["REGISTER"] = "REGISTER"
    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    instance_id: str = Field(min_length=1, max_length=100)
    version: str
    wire_version: int
    labels: dict[str, str] = Field(default_factory=dict)
    devices: list[DeviceSpec] = Field(default_factory=list, max_length=10_000)
    held_tasks: list[int] = Field(
        default_factory=list,
        description="Tasks the agent runs or has finished without an acknowledged final event.",
    )


class Heartbeat(_Message):
    """Sent every heartbeat interval; keeps the agent online and renews its leases."""

    type: Literal["HEARTBEAT"] = "HEARTBEAT"


class _Event(_Message):
    seq: int = Field(ge=1)
    at: datetime = Field(default_factory=utcnow)


class TaskStarted(_Event):
    """The agent began a task."""

    type: Literal["TASK_STARTED"] = "TASK_STARTED"
    task_id: int


class StepStarted(_Event):
    """A step began."""

    type: Literal["STEP_STARTED"] = "STEP_STARTED"
    task_id: int
    step_index: int = Field(ge=0)


class LogChunk(_Event):
    """Output of a step."""

    type: Literal["LOG"] = "LOG"
    task_id: int
    step_index: int = Field(ge=0)
    stream: Literal["stdout", "stderr", "info"] = "stdout"
    text: str


class StepFinished(_Event):
    """A step ended."""

    type: Literal["STEP_FINISHED"] = "STEP_FINISHED"
    task_id: int
    step_index: int = Field(ge=0)
    state: RunState
    exit_code: int | None = None
    error: str | None = None


class TaskFinished(_Event):
    """A task ended; steps it never reached are skipped."""

    type: Literal["TASK_FINISHED"] = "TASK_FINISHED"
    task_id: int
    state: RunState
    error: str | None = None


class DeviceAdded(_Event):
    """A device appeared on the agent."""

    type: Literal["DEVICE_ADDED"] = "DEVICE_ADDED"
    device: DeviceSpec


class DeviceRemoved(_Event):
    """A device went away from the agent."""

    type: Literal["DEVICE_REMOVED"] = "DEVICE_REMOVED"
    name: str


EventMessage = (
    TaskStarted | StepStarted | LogChunk | StepFinished | TaskFinished | DeviceAdded | DeviceRemoved
)
"""Any numbered event an agent sends."""

AgentEvent = Annotated[EventMessage, Field(discriminator="type")]
AgentMessageModel = Register | Heartbeat | EventMessage
"""Any message an agent sends."""

AgentMessage = Annotated[AgentMessageModel, Field(discriminator="type")]

# ---- hub -> agent ----------------------------------------------------------------------------


class Initialized(_Message):
    """The hub accepted the registration."""

    type: Literal["INITIALIZED"] = "INITIALIZED"
    agent_id: int
    server_id: str
    last_seq: int = Field(description="The highest event seq the hub has stored for this agent.")
    heartbeat_interval: float


class Ack(_Message):
    """Every event up to and including `seq` is stored."""

    type: Literal["ACK"] = "ACK"
    seq: int


class StepSpec(_Message):
    """A step as the agent runs it."""

    name: str
    plugin: str
    params: dict[str, Any] = Field(default_factory=dict)
    timeout: float | None = None
    coverage: bool = Field(
        False,
        description="A coverage session opens around the step: the agent starts the step once "
        "its STEP_STARTED is acknowledged (the session is open then), and starts nothing else "
        "before its STEP_FINISHED is (the session is closed).",
    )


class RunTask(_Message):
    """Run these steps on this device of yours."""

    type: Literal["RUN_TASK"] = "RUN_TASK"
    task_id: int
    job_id: int
    device_name: str
    steps: list[StepSpec]


class StopTask(_Message):
    """Stop a task: its running step is ended and the task reported cancelled."""

    type: Literal["STOP_TASK"] = "STOP_TASK"
    task_id: int
    reason: str = "stopped"


class Error(_Message):
    """Something the hub could not accept; `fatal` means the connection will close."""

    type: Literal["ERROR"] = "ERROR"
    code: str
    message: str
    location: str | None = None
    fatal: bool = False


HubMessageModel = Initialized | Ack | RunTask | StopTask | Error
"""Any message the hub sends to an agent."""

HubMessage = Annotated[HubMessageModel, Field(discriminator="type")]

AGENT_MESSAGES: TypeAdapter[AgentMessageModel] = TypeAdapter(AgentMessage)
HUB_MESSAGES: TypeAdapter[HubMessageModel] = TypeAdapter(HubMessage)
AGENT_MESSAGE_TYPES = (
    "REGISTER",
    "HEARTBEAT",
    "TASK_STARTED",
    "STEP_STARTED",
    "LOG",
    "STEP_FINISHED",
    "TASK_FINISHED",
    "DEVICE_ADDED",
    "DEVICE_REMOVED",
)
