"""The states of jobs, tests, tasks, steps, agents and devices."""

from __future__ import annotations

from enum import StrEnum


class JobState(StrEnum):
    """Where a job is in its life."""

    QUEUED = "queued"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLING = "cancelling"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        """True once the job can change no more."""
        return self in FINISHED_JOB_STATES


FINISHED_JOB_STATES = frozenset({JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED})


class RunState(StrEnum):
    """The state of a test, a task (one device's pass through a test) or a step."""

    PENDING = "pending"
    RUNNING = "running"
    PASSED = "passed"
    FAILED = "failed"
    INCOMPLETE = "incomplete"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        """True once the state is final."""
        return self not in (RunState.PENDING, RunState.RUNNING)


class AgentState(StrEnum):
    """An agent is online while its heartbeats arrive."""

    ONLINE = "online"
    OFFLINE = "offline"


class DeviceState(StrEnum):
    """A device is free, claimed by a holder (busy), or unreachable (offline)."""

    FREE = "free"
    BUSY = "busy"
    OFFLINE = "offline"
