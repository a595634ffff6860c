"""The lab at a glance: the overview, who is signed in, and the live channel's messages."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from testfleet.protocol.api import EventRecord


class ThroughputBucket(BaseModel):
    """Jobs that finished in one time bucket."""

    start: datetime
    completed: int = 0
    failed: int = 0
    cancelled: int = 0
    mean_seconds: float | None = None
    """Mean run time (started to ended) of the jobs that ran, in seconds."""
    max_seconds: float | None = None


class Overview(BaseModel):
    """`GET /api/v1/overview`: counts for the lab now and a series over the last `hours`."""

    server_id: str
    at: datetime
    agents: dict[str, int]
    """Agents per state: online, offline."""
    devices: dict[str, int]
    """Devices per state: free, busy, offline."""
    jobs: dict[str, int]
    """Unfinished jobs per state: queued, running, paused, cancelling."""
    finished_last_hour: dict[str, int]
    """Jobs that finished in the last hour per final state: completed, failed, cancelled."""
    bucket_seconds: int
    throughput: list[ThroughputBucket]
    """Oldest first, one per bucket, covering the window up to now."""


class Me(BaseModel):
    """`GET /api/v1/auth/me`: who the hub takes the caller for."""

    name: str
    role: str
    auth_enabled: bool
    via: Literal["token", "cookie", "none"]
    """How the caller was recognised: a bearer token, the sign-in cookie, or not at all
    (auth off)."""
    server_id: str


class SignIn(BaseModel):
    """`POST /api/v1/auth/session`: a token to sign in with."""

    token: str = Field(min_length=1, max_length=200)


# The live channel (`/api/v1/live`, a WebSocket): the client subscribes, the hub pushes.


class FollowJob(BaseModel):
    """Send every event of job `job_id` after `after` (then each as it is stored)."""

    type: Literal["follow_job"] = "follow_job"
    job_id: int = Field(ge=1)
    after: int = Field(default=0, ge=0)
    kinds: list[str] = Field(default_factory=list, max_length=50)


class UnfollowJob(BaseModel):
    """Stop sending job `job_id`'s events."""

    type: Literal["unfollow_job"] = "unfollow_job"
    job_id: int = Field(ge=1)


class WatchLab(BaseModel):
    """Say when jobs or the inventory change (`lab_changed`)."""

    type: Literal["watch_lab"] = "watch_lab"


ClientMessage = Annotated[FollowJob | UnfollowJob | WatchLab, Field(discriminator="type")]


class JobEvent(BaseModel):
    """One event of a followed job."""

    type: Literal["event"] = "event"
    event: EventRecord


class JobEnded(BaseModel):
    """A followed job has finished and all its events were sent (or it does not exist)."""

    type: Literal["job_end"] = "job_end"
    job_id: int
    state: str


class LabChanged(BaseModel):
    """Something in the lab changed: `jobs` (a job was queued, started, finished, deleted
    ...), `inventory` (agents, devices, claims), `schedules` (added, paused, resumed, fired,
    removed), `webhooks` (added, paused, removed, a delivery queued or attempted),
    `sessions` (gateway sessions requested, started, ended, a command recorded), `plans` (plan
    tasks created, started, finished) and/or `coverage` (coverage sessions started or ended, a
    part taken in). Read the parts you show again."""

    type: Literal["lab_changed"] = "lab_changed"
    topics: list[
        Literal["jobs", "inventory", "schedules", "webhooks", "sessions", "plans", "coverage"]
    ]


class LiveError(BaseModel):
    """A message the hub could not take; `fatal` closes the channel."""

    type: Literal["error"] = "error"
    code: str
    message: str
    location: str = ""
    fatal: bool = False
