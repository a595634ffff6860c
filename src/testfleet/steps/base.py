"""What a step plugin is: validated parameters and an async `run` on the agent."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol

from pydantic import BaseModel, ConfigDict

LogStream = Literal["stdout", "stderr", "info"]


class StepParams(BaseModel):
    """Base of every plugin's parameters: unknown fields are an error."""

    model_config = ConfigDict(extra="forbid")


class ProcessTracker(Protocol):
    """Where a step reports the process groups it starts, so that the agent can end them
    even if it dies first (see `testfleet.agent.processes`)."""

    def started(self, pgid: int) -> None:
        """A process group was started (its leader's pid)."""

    def ended(self, pgid: int) -> None:
        """The process group is gone (its leader was reaped and the group signalled)."""


class Untracked:
    """A tracker that keeps nothing (steps run outside an agent, in tests)."""

    def started(self, pgid: int) -> None:
        pass

    def ended(self, pgid: int) -> None:
        pass


@dataclass(frozen=True)
class StepContext:
    """What a running step may use: where it runs, how to log, where to report processes."""

    job_id: int
    task_id: int
    step_index: int
    device_name: str
    log: Callable[[LogStream, str], Awaitable[None]]
    timeout: float | None = None
    processes: ProcessTracker = field(default_factory=Untracked)
    workdir: Path | None = None
    """The task's working directory (steps run there; artifact globs are relative to it).
    None: the agent's own working directory."""
    env: dict[str, str] = field(default_factory=dict)
    """Set for programs the step runs: the device's TESTFLEET_WEBDRIVER_URL (browsers, phones
    behind Appium), TESTFLEET_DEVICE_CAPS (the capabilities to ask it for, JSON) and
    TESTFLEET_DEVICE_NAME."""
    agent_name: str = ""
    hub_url: str | None = None
    token: str | None = None
    cache_dir: Path | None = None
    """Where a plugin may keep what it downloads or builds between tasks (test plans do)."""


@dataclass(frozen=True)
class StepResult:
    """How a step ended: passed, or failed with an exit code and/or an error."""

    passed: bool
    exit_code: int | None = None
    error: str | None = None


class StepPlugin:
    """Subclass with `name`, `Params` and `run`; register under entry point `testfleet.steps`."""

    name: ClassVar[str]
    Params: ClassVar[type[StepParams]] = StepParams

    async def run(self, ctx: StepContext, params: Any) -> StepResult:
        """Run the step with validated `params` (an instance of `Params`)."""
        raise NotImplementedError
