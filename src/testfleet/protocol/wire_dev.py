"""Developer mode's messages from the hub to an agent (see docs/devmode.md); the agent's
answers are numbered events, in `wire.py` with the others."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from testfleet.protocol.types import Id, Text


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PauseFlags(_Message):
    """Developer mode: where the tasks of a job pause (all off: they never do)."""

    pause_at: Text | None = Field(
        None, max_length=200, description="Pause before the step of this name starts."
    )
    pause_on_failure: bool = Field(False, description="Pause after a step that failed.")
    pause_on_next: bool = Field(False, description="Pause at every step boundary.")


class DevSet(_Message):
    """Developer mode: the pause flags of a job's tasks on this agent, now and for the tasks
    of the job still to come (replaces the earlier flags)."""

    type: Literal["DEV_SET"] = "DEV_SET"
    job_id: Id
    flags: PauseFlags


class DevResume(_Message):
    """Developer mode: resume the job's paused tasks on this agent (none paused: nothing)."""

    type: Literal["DEV_RESUME"] = "DEV_RESUME"
    job_id: Id
    by: Text | None = Field(None, max_length=200)
    ignore_failure: bool = False


class DevList(_Message):
    """Developer mode: report the working directory of a task (DEV_LISTING)."""

    type: Literal["DEV_LIST"] = "DEV_LIST"
    task_id: Id
    request_id: Text = Field(max_length=100)


class DevRun(_Message):
    """Developer mode: run a shell command in a paused task's working directory, within
    `timeout` seconds and `max_output` characters of output (DEV_COMMAND_OUTPUT, then
    DEV_COMMAND_FINISHED)."""

    type: Literal["DEV_RUN"] = "DEV_RUN"
    task_id: Id
    command_id: Text = Field(max_length=100)
    command: Text = Field(min_length=1, max_length=10_000)
    by: Text | None = Field(None, max_length=200)
    timeout: float = Field(30.0, gt=0, le=3600)
    max_output: int = Field(256 * 1024, ge=1, le=16 * 1024 * 1024)


class DevScreenshot(_Message):
    """Developer mode: take a screenshot of the task's device from its live WebDriver session
    (DEV_SCREENSHOT_TAKEN)."""

    type: Literal["DEV_SCREENSHOT"] = "DEV_SCREENSHOT"
    task_id: Id
    request_id: Text = Field(max_length=100)
