"""The schema. Migrations in `migrations/versions` create exactly this (a test compares)."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
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
    Column("removed", Boolean, nullable=False, default=False),
    UniqueConstraint("agent_id", "name"),
)
Index("ix_devices_state", devices.c.state)

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
)

# ---- test plans (Testground): plans, their sources and builds, tasks, instances, outputs -----

plans = Table(
    "plans",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("manifest", JSON, nullable=False),
    Column("source_hash", String(64), nullable=False),
    Column("imported_at", UTCDateTime, nullable=False),
    Column("requestor", String(200), nullable=False),
)

# A plan's source archive (or a linked SDK's), stored once per content hash.
plan_sources = Table(
    "plan_sources",
    metadata,
    Column("hash", String(64), primary_key=True),
    Column("data", LargeBinary, nullable=False),
    Column("size", BigId, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

plan_builds = Table(
    "plan_builds",
    metadata,
    Column("artifact", String(64), primary_key=True),
    Column("plan", String(100), nullable=False),
    Column("builder", String(50), nullable=False),
    Column("source_hash", String(64), nullable=False),
    Column("sdk_hash", String(64)),
    Column("build_config", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

plan_tasks = Table(
    "plan_tasks",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("type", String(10), nullable=False),
    Column("plan", String(100), nullable=False),
    Column("case", String(100), nullable=False),
    Column("runner", String(50), nullable=False),
    Column("builder", String(50), nullable=False),
    Column("state", String(20), nullable=False),
    Column("states", JSON, nullable=False),
    Column("composition", JSON, nullable=False),
    Column("result", JSON),
    Column("error", Text),
    Column("log", Text, nullable=False, default=""),
    Column("requestor", String(200), nullable=False),
    Column("server_id", String(200), nullable=False),
    Column("artifact", String(64)),
    Column("job_id", BigId, ForeignKey("jobs.id", ondelete="SET NULL")),
    Column("created_at", UTCDateTime, nullable=False),
    Column("ended_at", UTCDateTime),
)
Index("ix_plan_tasks_state_created_at", plan_tasks.c.state, plan_tasks.c.created_at)
Index("ix_plan_tasks_created_at", plan_tasks.c.created_at)
Index("ix_plan_tasks_job_id", plan_tasks.c.job_id)

# One row per instance of a run: its identity (seq) is given at placement; an outcome, once
# reported, is never replaced (an instance reporting twice counts once).
plan_instances = Table(
    "plan_instances",
    metadata,
    Column("run_id", String(40), ForeignKey("plan_tasks.id", ondelete="CASCADE"), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("group_id", String(100), nullable=False),
    Column("group_seq", Integer, nullable=False),
    Column("agent", String(100)),
    Column("state", String(20), nullable=False),
    Column("exit_code", Integer),
    Column("error", Text),
    Column("started_at", UTCDateTime),
    Column("ended_at", UTCDateTime),
)

# Each agent's share of a run's outputs: a tar.gz laid out <group>/<seq>/...
plan_outputs = Table(
    "plan_outputs",
    metadata,
    Column("run_id", String(40), ForeignKey("plan_tasks.id", ondelete="CASCADE"), primary_key=True),
    Column("part", String(200), primary_key=True),
    Column("data", LargeBinary, nullable=False),
    Column("size", BigId, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

# ---- the sync service's shared state (PostgreSQL engine), scoped by run ----------------------

sync_counters = Table(
    "sync_counters",
    metadata,
    Column("run_id", String(100), primary_key=True),
    Column("kind", String(10), primary_key=True),
    Column("name", String(200), primary_key=True),
    Column("value", BigId, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)
Index("ix_sync_counters_updated_at", sync_counters.c.updated_at)

sync_entries = Table(
    "sync_entries",
    metadata,
    Column("run_id", String(100), primary_key=True),
    Column("state", String(200), primary_key=True),
    Column("key", String(200), primary_key=True),
    Column("seq", BigId, nullable=False),
)

sync_messages = Table(
    "sync_messages",
    metadata,
    Column("run_id", String(100), primary_key=True),
    Column("topic", String(200), primary_key=True),
    Column("seq", BigId, primary_key=True),
    Column("key", String(200)),
    Column("payload", Text, nullable=False),
    UniqueConstraint("run_id", "topic", "key"),
)
