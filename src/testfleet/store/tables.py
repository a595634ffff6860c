"""The schema. Migrations in `migrations/versions` create exactly this (a test compares)."""

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
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from testfleet.store.types import BigId, UTCDateTime

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

jobs = Table(
    "jobs",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False),
    Column("state", String(20), nullable=False),
    Column("requestor", String(200), nullable=False),
    Column("descriptor", JSON, nullable=False),
    Column("tags", JSON, nullable=False),
    Column("runs_requested", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("started_at", UTCDateTime),
    Column("ended_at", UTCDateTime),
    Column("retried_from", BigId, ForeignKey("jobs.id")),
    Column("error", Text),
    Column("final_reporters", JSON),
    # Which hub runs the job, until when; another hub takes over an expired lease.
    Column("owner", String(200)),
    Column("lease_expires_at", UTCDateTime),
    Column("stop_requested", Boolean, nullable=False, default=False),
)
Index("ix_jobs_state_id", jobs.c.state, jobs.c.id)
Index("ix_jobs_requestor", jobs.c.requestor)
Index("ix_jobs_name", jobs.c.name)
Index("ix_jobs_state_owner_id", jobs.c.state, jobs.c.owner, jobs.c.id)
Index("ix_jobs_lease_expires_at", jobs.c.lease_expires_at)
Index("ix_jobs_ended_at", jobs.c.ended_at)  # retention, and the overview's recent jobs
Index("ix_jobs_retried_from", jobs.c.retried_from)  # a deleted job's retries are unlinked
Index("ix_jobs_created_at", jobs.c.created_at)  # the job list's time filter

job_tags = Table(
    "job_tags",
    metadata,
    Column("job_id", BigId, ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
    Column("tag", String(100), primary_key=True),
)
Index("ix_job_tags_tag", job_tags.c.tag)

job_runs = Table(
    "job_runs",
    metadata,
    Column("job_id", BigId, ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
    Column("number", Integer, primary_key=True),
    Column("state", String(20), nullable=False),
    Column("started_at", UTCDateTime),
    Column("ended_at", UTCDateTime),
    Column("reporters", JSON),
)

job_tests = Table(
    "job_tests",
    metadata,
    Column("job_id", BigId, ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
    Column("run", Integer, primary_key=True),
    Column("test_index", Integer, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("state", String(20), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("started_at", UTCDateTime),
    Column("ended_at", UTCDateTime),
    Column("error", Text),
    # Why the test waits for devices, in words (None while it does not).
    Column("waiting", Text),
)

agents = Table(
    "agents",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("instance_id", String(100)),
    Column("state", String(20), nullable=False),
    Column("version", String(50), nullable=False),
    Column("labels", JSON, nullable=False),
    Column("hub", String(200)),
    Column("connected_at", UTCDateTime),
    Column("last_seen", UTCDateTime),
    Column("last_seq", BigId, nullable=False, default=0),
)

hubs = Table(
    "hubs",
    metadata,
    Column("server_id", String(200), primary_key=True),
    Column("started_at", UTCDateTime, nullable=False),
    # Written every few seconds while the hub runs: its agents are lost only once it is stale.
    Column("heartbeat_at", UTCDateTime, nullable=False),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("requestor", String(200), primary_key=True),
    Column("key", String(200), primary_key=True),
    Column("job_id", BigId, ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
    Column("request_hash", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)
Index("ix_idempotency_keys_created_at", idempotency_keys.c.created_at)

devices = Table(
    "devices",
    metadata,
    Column("id", String(300), primary_key=True),
    Column("agent_id", BigId, ForeignKey("agents.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("kind", String(50), nullable=False),
    Column("state", String(20), nullable=False),
    Column("capabilities", JSON, nullable=False),
    Column("labels", JSON, nullable=False),
    Column("holder_job_id", BigId, ForeignKey("jobs.id", ondelete="SET NULL")),
    Column("lease_expires_at", UTCDateTime),
    Column("claimed_at", UTCDateTime),  # since when its holder has it
    Column("removed", Boolean, nullable=False, default=False),
    # When the row last changed: hubs refresh their index of devices from it.
    Column("changed_at", UTCDateTime),
    UniqueConstraint("agent_id", "name"),
)
Index("ix_devices_state", devices.c.state)
Index("ix_devices_changed_at", devices.c.changed_at)
Index("ix_devices_agent_id", devices.c.agent_id)

tasks = Table(
    "tasks",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("job_id", BigId, ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
    Column("run", Integer, nullable=False),
    Column("test_index", Integer, nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("device_id", String(300), nullable=False),
    Column("device_name", String(200), nullable=False),
    Column("agent_id", BigId, ForeignKey("agents.id"), nullable=False),
    Column("state", String(20), nullable=False),
    Column("started_at", UTCDateTime),
    Column("ended_at", UTCDateTime),
    Column("error", Text),
)
Index("ix_tasks_job_run_test", tasks.c.job_id, tasks.c.run, tasks.c.test_index)
Index("ix_tasks_agent_state", tasks.c.agent_id, tasks.c.state)

steps = Table(
    "steps",
    metadata,
    Column("task_id", BigId, ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True),
    Column("idx", Integer, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("plugin", String(100), nullable=False),
    Column("state", String(20), nullable=False),
    Column("exit_code", Integer),
    Column("started_at", UTCDateTime),
    Column("ended_at", UTCDateTime),
    Column("error", Text),
)

events = Table(
    "events",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("kind", String(50), nullable=False),
    Column("job_id", BigId, ForeignKey("jobs.id", ondelete="CASCADE")),
    Column("task_id", BigId),
    Column("agent_id", BigId, ForeignKey("agents.id", ondelete="SET NULL")),
    Column("agent_seq", BigId),
    Column("at", UTCDateTime, nullable=False),
    Column("data", JSON, nullable=False),
    # An agent's event is stored once, however often it is sent.
    UniqueConstraint("agent_id", "agent_seq"),
)
Index("ix_events_job_id_id", events.c.job_id, events.c.id)

tokens = Table(
    "tokens",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False),
    Column("role", String(20), nullable=False),
    Column("secret_hash", String(64), nullable=False, unique=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(100)),
    Column("revoked_at", UTCDateTime),
    # An agent token is for one agent name: set when issued, or bound at first registration.
    Column("agent_name", String(100)),
)
Index(
    "ix_tokens_agent_name_live",
    tokens.c.agent_name,
    unique=True,
    postgresql_where=tokens.c.revoked_at.is_(None),
    sqlite_where=tokens.c.revoked_at.is_(None),
)
Index("ix_tokens_revoked_at", tokens.c.revoked_at)
Index("ix_agents_hub_state", agents.c.hub, agents.c.state)

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
