"""The core schema: jobs and their runs and tests, agents, hubs, devices, tasks, steps, events
and tokens (and the metadata every table of the schema belongs to)."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
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
    # The device's WebDriver endpoint (browsers, phones behind Appium), what every new session
    # on it is asked for besides the client's capabilities, the gateway session holding it.
    Column("url", String(2000)),
    Column("session_capabilities", JSON),
    Column("holder_session_id", BigId),
    Column("last_used_at", UTCDateTime),
    UniqueConstraint("agent_id", "name"),
)
Index("ix_devices_state", devices.c.state)
Index("ix_devices_changed_at", devices.c.changed_at)
Index("ix_devices_agent_id", devices.c.agent_id)
Index("ix_devices_holder_session_id", devices.c.holder_session_id)

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
    # Developer mode: why the task is paused, and before (or after) which step; None: it runs.
    Column("paused", Text),
    Column("paused_step", Integer),
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
