"""What a step plugin is: validated parameters and an async `run` on the agent."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict

LogStream = Literal["stdout", "stderr", "info"]


class StepParams(BaseModel):
    """Base of every plugin's parameters: unknown fields are an error."""

    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class StepContext:
    """What a running step may use: where it runs and how to log."""

    job_id: int
    task_id: int
    step_index: int
    device_name: str
    log: Callable[[LogStream, str], Awaitable[None]]
    timeout: float | None = None
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
