"""Records of the results tables: artifacts, test cases, webhooks, deliveries, schedules."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from testfleet.store.records import Record


@dataclass(frozen=True, slots=True)
class ArtifactRecord(Record):
    """One file of a job: being received, or complete."""

    id: int
    job_id: int
    task_id: int
    step_index: int
    path: str
    size: int
    sha256: str
    state: str
    created_at: datetime
    completed_at: datetime | None
    report_cases: int | None
    report_error: str | None
    device_name: str = ""

    @property
    def key(self) -> str:
        """Where the storage keeps it."""
        return artifact_key(self.job_id, self.id)


def artifact_key(job_id: int, artifact_id: int) -> str:
    """The storage key of an artifact: grouped by job, so a job's files go together."""
    return f"{job_id}/{artifact_id}"


@dataclass(frozen=True, slots=True)
class TestCaseRecord(Record):
    """One test case of a report."""

    __test__ = False

    id: int
    job_id: int
    artifact_id: int
    task_id: int
    job_name: str
    suite: str
    classname: str
    name: str
    outcome: str
    duration: float | None
    message: str | None
    detail: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class WebhookRecord(Record):
    """A registered webhook (its secret signs every delivery)."""

    id: int
    url: str
    secret: str
    events: list[str]
    tags: list[str]
    description: str
    active: bool
    created_at: datetime
    created_by: str | None


@dataclass(frozen=True, slots=True)
class DeliveryRecord(Record):
    """One event to deliver to one webhook, over its attempts."""

    id: int
    webhook_id: int
    event: str
    event_id: int | None
    payload: dict[str, Any]
    state: str
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None
    ended_at: datetime | None
    claimed_by: str | None
    claim_until: datetime | None


@dataclass(frozen=True, slots=True)
class AttemptRecord(Record):
    """One try at a delivery."""

    id: int
    delivery_id: int
    number: int
    at: datetime
    hub: str
    duration_ms: float
    status_code: int | None
    error: str | None


@dataclass(frozen=True, slots=True)
class ScheduleRecord(Record):
    """A descriptor started on a timetable."""

    id: int
    name: str
    cron: str
    timezone: str
    descriptor: dict[str, Any]
    params: dict[str, Any]
    missed: str
    enabled: bool
    next_fire_at: datetime | None
    last_fire_at: datetime | None
    last_job_id: int | None
    created_at: datetime
    created_by: str | None
