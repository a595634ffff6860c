"""The results tables: artifacts, test cases, webhooks, schedules and deletions."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from testfleet.store.tables.core import metadata
from testfleet.store.types import BigId, UTCDateTime

# ---- results: artifacts, test cases, webhooks, schedules, deletions (docs/results.md) -------

artifacts = Table(
    "artifacts",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("job_id", BigId, ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
    Column("task_id", BigId, ForeignKey("tasks.id", ondelete="CASCADE"), nullable=False),
    Column("step_index", Integer, nullable=False),
    Column("path", String(1000), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
    # receiving: an upload under way (never listed); complete: checked and listed.
    Column("state", String(20), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("completed_at", UTCDateTime),
    Column("report_cases", Integer),
    Column("report_error", Text),
    UniqueConstraint("task_id", "step_index", "path"),
)
Index("ix_artifacts_job_id_state", artifacts.c.job_id, artifacts.c.state)
Index("ix_artifacts_state_created_at", artifacts.c.state, artifacts.c.created_at)

test_cases = Table(
    "test_cases",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("job_id", BigId, ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
    Column("artifact_id", BigId, ForeignKey("artifacts.id", ondelete="CASCADE"), nullable=False),
    Column("task_id", BigId, nullable=False),
    Column("job_name", String(200), nullable=False),
    Column("suite", String(500), nullable=False),
    Column("classname", String(500), nullable=False),
    Column("name", String(500), nullable=False),
    # passed, failed, error, skipped
    Column("outcome", String(10), nullable=False),
    Column("duration", Float),
    Column("message", Text),
    Column("detail", Text),
    Column("at", UTCDateTime, nullable=False),
)
Index("ix_test_cases_job_id_outcome", test_cases.c.job_id, test_cases.c.outcome)
Index("ix_test_cases_name_id", test_cases.c.name, test_cases.c.id)
Index("ix_test_cases_artifact_id", test_cases.c.artifact_id)

webhooks = Table(
    "webhooks",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("url", String(2000), nullable=False),
    Column("secret", String(200), nullable=False),
    Column("events", JSON, nullable=False),
    Column("tags", JSON, nullable=False),
    Column("description", String(500), nullable=False),
    Column("active", Boolean, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(200)),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("webhook_id", BigId, ForeignKey("webhooks.id", ondelete="CASCADE"), nullable=False),
    Column("event", String(50), nullable=False),
    # The stored event it reports (None for a ping): one delivery per webhook and event.
    Column("event_id", BigId),
    Column("payload", JSON, nullable=False),
    # pending (waiting for its next attempt), delivered, failed (gave up)
    Column("state", String(20), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("next_attempt_at", UTCDateTime),
    Column("ended_at", UTCDateTime),
    # The hub making an attempt now, until when (another hub takes it over afterwards).
    Column("claimed_by", String(200)),
    Column("claim_until", UTCDateTime),
    UniqueConstraint("webhook_id", "event_id", "event"),
)
Index(
    "ix_webhook_deliveries_state_next",
    webhook_deliveries.c.state,
    webhook_deliveries.c.next_attempt_at,
)
Index(
    "ix_webhook_deliveries_webhook_id_id", webhook_deliveries.c.webhook_id, webhook_deliveries.c.id
)

webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column(
        "delivery_id",
        BigId,
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("number", Integer, nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("hub", String(200), nullable=False),
    Column("duration_ms", Float, nullable=False),
    Column("status_code", Integer),
    Column("error", Text),
)
Index("ix_webhook_attempts_delivery_id", webhook_attempts.c.delivery_id)

event_cursors = Table(
    "event_cursors",
    metadata,
    # A reader of the event log that must see every event once (webhook fan-out).
    Column("name", String(50), primary_key=True),
    Column("last_event_id", BigId, nullable=False),
)

schedules = Table(
    "schedules",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("cron", String(200), nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("descriptor", JSON, nullable=False),
    Column("params", JSON, nullable=False),
    # What a fire missed while no hub ran does: once (one job at start) or skip.
    Column("missed", String(10), nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("next_fire_at", UTCDateTime),
    Column("last_fire_at", UTCDateTime),
    Column("last_job_id", BigId),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(200)),
)
Index("ix_schedules_enabled_next_fire_at", schedules.c.enabled, schedules.c.next_fire_at)

job_deletions = Table(
    "job_deletions",
    metadata,
    # A job being deleted: hidden at once, its rows and files removed in the background.
    Column("job_id", BigId, ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
    Column("requested_at", UTCDateTime, nullable=False),
    Column("requested_by", String(200), nullable=False),
    Column("claimed_by", String(200)),
    Column("claim_until", UTCDateTime),
)
