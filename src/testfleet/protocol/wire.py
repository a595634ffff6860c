"""Messages on the WebSocket between the hub and an agent: one JSON object per text frame.

Agent -> hub events carry `seq`, a number that belongs to the agent and keeps counting across
reconnects; the hub stores each (agent, seq) once and answers `ACK` with the highest stored.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter

from testfleet.protocol.states import RunState
from testfleet.protocol.types import Id, Int32, Seq, Text
from testfleet.protocol.wire_dev import (
    DevList,
    DevResume,
    DevRun,
    DevScreenshot,
    DevSet,
    PauseFlags,
)


def utcnow() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DeviceSpec(_Message):
    """A device an agent offers."""

    name: Text = Field(min_length=1, max_length=200)
    kind: Text = Field("host", min_length=1, max_length=50)
    capabilities: dict[str, Any] = Field(default_factory=dict)
    labels: dict[Text, Text] = Field(default_factory=dict)
    url: Text | None = Field(
        None,
        max_length=2000,
        pattern=r"^https?://",
        description="The device's WebDriver endpoint, for browsers and phones.",
    )
    session_capabilities: dict[str, Any] = Field(
        default_factory=dict,
        description="Merged into every new-session request for the device (where its browser "
        "binary is, its udid ...), besides `capabilities`.",
    )


# ---- agent -> hub ----------------------------------------------------------------------------


class Register(_Message):
    """The first message of a connection."""

    type: Literal["REGISTER"] = "REGISTER"
    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    instance_id: Text = Field(min_length=1, max_length=100)
    version: Text = Field(max_length=50)
    wire_version: Int32
    labels: dict[Text, Text] = Field(default_factory=dict)
    devices: list[DeviceSpec] = Field(default_factory=list, max_length=10_000)
    held_tasks: list[Id] = Field(
        default_factory=list,
        max_length=100_000,
        description="Tasks the agent runs or has finished without an acknowledged final event.",
    )


class Heartbeat(_Message):
    """Sent every heartbeat interval; keeps the agent online and renews its leases."""

    type: Literal["HEARTBEAT"] = "HEARTBEAT"


class _Event(_Message):
    seq: Seq
    at: AwareDatetime = Field(default_factory=utcnow)


class TaskStarted(_Event):
    """The agent began a task."""

    type: Literal["TASK_STARTED"] = "TASK_STARTED"
    task_id: Id


class StepStarted(_Event):
    """A step began."""

    type: Literal["STEP_STARTED"] = "STEP_STARTED"
    task_id: Id
    step_index: int = Field(ge=0, le=10_000)


class LogChunk(_Event):
    """Output of a step."""

    type: Literal["LOG"] = "LOG"
    task_id: Id
    step_index: int = Field(ge=0, le=10_000)
    stream: Literal["stdout", "stderr", "info"] = "stdout"
    text: str = Field(max_length=1_000_000)


class StepFinished(_Event):
    """A step ended."""

    type: Literal["STEP_FINISHED"] = "STEP_FINISHED"
    task_id: Id
    step_index: int = Field(ge=0, le=10_000)
    state: RunState
    exit_code: Int32 | None = None
    error: Text | None = None


class TaskFinished(_Event):
    """A task ended; steps it never reached are skipped."""

    type: Literal["TASK_FINISHED"] = "TASK_FINISHED"
    task_id: Id
    state: RunState
    error: Text | None = None


class DeviceAdded(_Event):
    """A device appeared on the agent."""

    type: Literal["DEVICE_ADDED"] = "DEVICE_ADDED"
    device: DeviceSpec


class DeviceRemoved(_Event):
    """A device went away from the agent."""

    type: Literal["DEVICE_REMOVED"] = "DEVICE_REMOVED"
    name: Text = Field(min_length=1, max_length=200)


class TaskPaused(_Event):
    """Developer mode: the task stopped at a step boundary and waits to be resumed (its
    device stays claimed). `step_index` is the step it will run next (or, after a failed step,
    the one that failed)."""

    type: Literal["TASK_PAUSED"] = "TASK_PAUSED"
    task_id: Id
    step_index: int = Field(ge=0, le=10_000)
    step_name: Text = Field(max_length=200)
    reason: Text = Field(min_length=1, max_length=500)


class TaskResumed(_Event):
    """Developer mode: a paused task goes on."""

    type: Literal["TASK_RESUMED"] = "TASK_RESUMED"
    task_id: Id
    step_index: int = Field(ge=0, le=10_000)
    by: Text | None = Field(None, max_length=200)
    ignore_failure: bool = False


class DevListing(_Event):
    """Developer mode: the paused task's working directory, as asked by DEV_LIST."""

    type: Literal["DEV_LISTING"] = "DEV_LISTING"
    task_id: Id
    request_id: Text = Field(max_length=100)
    directory: Text = Field(max_length=2000)
    entries: list[dict[str, Any]] = Field(default_factory=list, max_length=1000)
    truncated: bool = False
    error: Text | None = Field(None, max_length=2000)


class DevCommandOutput(_Event):
    """Developer mode: output of a command run with DEV_RUN."""

    type: Literal["DEV_COMMAND_OUTPUT"] = "DEV_COMMAND_OUTPUT"
    task_id: Id
    command_id: Text = Field(max_length=100)
    stream: Literal["stdout", "stderr"] = "stdout"
    text: str = Field(max_length=1_000_000)


class DevCommandFinished(_Event):
    """Developer mode: a command run with DEV_RUN ended (`exit_code` None: it could not start
    or was killed)."""

    type: Literal["DEV_COMMAND_FINISHED"] = "DEV_COMMAND_FINISHED"
    task_id: Id
    command_id: Text = Field(max_length=100)
    exit_code: Int32 | None = None
    timed_out: bool = False
    truncated: bool = False
    error: Text | None = Field(None, max_length=2000)


class DevScreenshotTaken(_Event):
    """Developer mode: the screen of a paused task's browser device (PNG, base64), or why
    there is none."""

    type: Literal["DEV_SCREENSHOT_TAKEN"] = "DEV_SCREENSHOT_TAKEN"
    task_id: Id
    request_id: Text = Field(max_length=100)
    png_base64: str | None = Field(None, max_length=3_000_000)
    error: Text | None = Field(None, max_length=2000)


EventMessage = (
    TaskStarted
    | StepStarted
    | LogChunk
    | StepFinished
    | TaskFinished
    | DeviceAdded
    | DeviceRemoved
    | TaskPaused
    | TaskResumed
    | DevListing
    | DevCommandOutput
    | DevCommandFinished
    | DevScreenshotTaken
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
    artifacts: list[str] = Field(
        default_factory=list, description="Globs of files to upload when the step ends."
    )
    coverage: bool = Field(
        False,
        description="A coverage session opens around the step: the agent starts the step once "
        "its STEP_STARTED is acknowledged (the session is open then), and starts nothing else "
        "before its STEP_FINISHED is (the session is closed).",
    )


class RunTask(_Message):
    """Run these steps on this device of yours."""

    type: Literal["RUN_TASK"] = "RUN_TASK"
    task_id: Id
    job_id: int
    device_name: str
    steps: list[StepSpec]
    pause: PauseFlags | None = Field(
        None,
        description="Developer mode: the job's pause flags when the task is given (left out "
        "when there are none, so that an agent that predates developer mode takes the task).",
        exclude_if=lambda value: value is None,
    )


class StopTask(_Message):
    """Stop a task: its running step is ended and the task reported cancelled."""

    type: Literal["STOP_TASK"] = "STOP_TASK"
    task_id: Id
    reason: str = "stopped"


class SetHeartbeat(_Message):
    """Heartbeat every `interval` seconds from now on (the hub adapts it to its fleet)."""

    type: Literal["SET_HEARTBEAT"] = "SET_HEARTBEAT"
    interval: float = Field(gt=0, le=3600)


class Error(_Message):
    """Something the hub could not accept; `fatal` means the connection will close."""

    type: Literal["ERROR"] = "ERROR"
    code: str
    message: str
    location: str | None = None
    fatal: bool = False


HubMessageModel = (
    Initialized
    | Ack
    | RunTask
    | StopTask
    | SetHeartbeat
    | Error
    | DevSet
    | DevResume
    | DevList
    | DevRun
    | DevScreenshot
)
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
    "TASK_PAUSED",
    "TASK_RESUMED",
    "DEV_LISTING",
    "DEV_COMMAND_OUTPUT",
    "DEV_COMMAND_FINISHED",
    "DEV_SCREENSHOT_TAKEN",
)
