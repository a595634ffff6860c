"""The test plans' tables (Testground): plans, their sources and builds, tasks, instances,
outputs; and the sync service's shared state (PostgreSQL engine), scoped by run."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from testfleet.store.tables.core import metadata
from testfleet.store.types import BigId, UTCDateTime

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
