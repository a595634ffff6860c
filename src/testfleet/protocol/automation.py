"""The JSON bodies of webhooks and schedules."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl

WebhookEvent = Literal["job.finished", "job.failed", "device.offline", "agent.lost"]
WEBHOOK_EVENTS: tuple[str, ...] = ("job.finished", "job.failed", "device.offline", "agent.lost")


class WebhookCreate(BaseModel):
    """`POST /api/v1/webhooks`."""

    model_config = ConfigDict(extra="forbid")

    url: HttpUrl = Field(description="Where deliveries are POSTed (http or https).")
    events: list[WebhookEvent] = Field(min_length=1, max_length=len(WEBHOOK_EVENTS))
    secret: str | None = Field(
        None,
        min_length=16,
        max_length=200,
        description="Signs every delivery (HMAC-SHA256); generated when not given.",
    )
    tags: list[str] = Field(
        default_factory=list,
        max_length=50,
        description="Job events only for jobs with one of these tags (none: every job).",
    )
    description: str = Field("", max_length=500)
    active: bool = True


class WebhookUpdate(BaseModel):
    """`PATCH /api/v1/webhooks/{id}`: what to change."""

    model_config = ConfigDict(extra="forbid")

    active: bool | None = None
    events: list[WebhookEvent] | None = Field(None, min_length=1)
    description: str | None = Field(None, max_length=500)


class WebhookInfo(BaseModel):
    """A webhook as listed (never its secret)."""

    webhook_id: int
    url: str
    events: list[str]
    tags: list[str]
    description: str
    active: bool
    created_at: datetime
    created_by: str | None = None


class WebhookCreated(WebhookInfo):
    """The one answer that carries the secret."""

    secret: str


class WebhookList(BaseModel):
    """`GET /api/v1/webhooks`."""

    server_id: str
    webhooks: list[WebhookInfo]


class AttemptInfo(BaseModel):
    """One try at a delivery."""

    number: int
    at: datetime
    hub: str
    duration_ms: float
    status_code: int | None = None
    error: str | None = None


DeliveryState = Literal["pending", "delivered", "failed"]


class DeliveryInfo(BaseModel):
    """One event for one webhook, with every attempt so far."""

    delivery_id: int
    webhook_id: int
    event: str
    state: DeliveryState
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None = None
    ended_at: datetime | None = None
    payload: dict[str, Any]
    attempt_log: list[AttemptInfo]


class DeliveryList(BaseModel):
    """`GET /api/v1/webhooks/{id}/deliveries`: newest first."""

    server_id: str
    deliveries: list[DeliveryInfo]


Scalar = str | int | float | bool
Missed = Literal["once", "skip"]


class ScheduleCreate(BaseModel):
    """`POST /api/v1/schedules`: a descriptor started on a timetable."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._:/@+-]*$")
    cron: str = Field(min_length=1, max_length=200, description="Five fields: '0 2 * * *'.")
    timezone: str = Field("UTC", max_length=64, description="An IANA zone: Europe/Berlin.")
    descriptor: dict[str, Any] | str = Field(
        description="The job descriptor to start at each fire: an object, or its text in YAML "
        "or JSON (read like the body of POST /jobs; the web UI sends what was pasted)."
    )
    params: dict[str, Scalar] = Field(
        default_factory=dict, description="Overrides of the descriptor's params."
    )
    missed: Missed = Field(
        "once",
        description="A fire missed while no hub ran: 'once' starts one job when a hub is "
        "back, 'skip' starts none.",
    )
    enabled: bool = True


class ScheduleUpdate(BaseModel):
    """`PATCH /api/v1/schedules/{id}`."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool | None = None
    cron: str | None = Field(None, min_length=1, max_length=200)
    timezone: str | None = Field(None, max_length=64)
    missed: Missed | None = None


class ScheduleInfo(BaseModel):
    """A schedule with its next fire times."""

    schedule_id: int
    name: str
    cron: str
    timezone: str
    missed: Missed
    enabled: bool
    next_fires: list[datetime] = Field(description="The next five fire times (UTC).")
    last_fire_at: datetime | None = None
    last_job_id: int | None = None
    created_at: datetime
    created_by: str | None = None
    params: dict[str, Any]
    descriptor: dict[str, Any]


class ScheduleList(BaseModel):
    """`GET /api/v1/schedules`."""

    server_id: str
    schedules: list[ScheduleInfo]


class ScheduleRun(BaseModel):
    """A job a schedule started."""

    schedule_id: int
    job_id: int
