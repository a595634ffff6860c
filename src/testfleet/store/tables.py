"""The schema. Migrations in `migrations/versions` create exactly this (a test compares)."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
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

# ---- coverage (Drill4J sessions; see store/coverage.py) --------------------------------------

coverage_builds = Table(
    "coverage_builds",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("app", String(200), nullable=False),
    Column("version", String(200), nullable=False),
    Column("parent", String(200)),
    Column("checksum", String(64), nullable=False),
    Column("classes", Integer, nullable=False),
    Column("functions", Integer, nullable=False),
    Column("probes", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("app", "version"),
)

coverage_classes = Table(
    "coverage_classes",
    metadata,
    Column(
        "build_id", BigId, ForeignKey("coverage_builds.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("idx", Integer, primary_key=True),
    Column("class_id", BigInteger, nullable=False),
    Column("name", String(1000), nullable=False),
    Column("lines", JSON, nullable=False),
    Column("arcs", JSON, nullable=False),
    Column("source", Text),
)
Index("ix_coverage_classes_build_id_name", coverage_classes.c.build_id, coverage_classes.c.name)

coverage_functions = Table(
    "coverage_functions",
    metadata,
    Column(
        "build_id", BigId, ForeignKey("coverage_builds.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("class_idx", Integer, primary_key=True),
    Column("idx", Integer, primary_key=True),
    Column("name", String(500), nullable=False),
    Column("line", Integer, nullable=False),
    Column("end_line", Integer, nullable=False),
    Column("first", Integer, nullable=False),
    Column("count", Integer, nullable=False),
    Column("checksum", String(64), nullable=False),
)

coverage_sessions = Table(
    "coverage_sessions",
    metadata,
    Column("id", String(100), primary_key=True),
    Column("build_id", BigId, ForeignKey("coverage_builds.id", ondelete="CASCADE"), nullable=False),
    Column("app", String(200), nullable=False),
    Column("test_type", String(50), nullable=False),
    Column("test_name", Text),
    Column("is_realtime", Boolean, nullable=False),
    Column("is_global", Boolean, nullable=False),
    Column("state", String(20), nullable=False),
    Column("agents", JSON, nullable=False),
    # "agent": on the probes named; "app": every probe of the build, those joining later too.
    Column("scope", String(10), nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime),
    Column("started_by", String(200), nullable=False),
    Column("job_id", BigId),
    Column("covered", Integer, nullable=False, default=0),
    Column("total", Integer, nullable=False, default=0),
)
Index("ix_coverage_sessions_app_state", coverage_sessions.c.app, coverage_sessions.c.state)
Index("ix_coverage_sessions_build_id", coverage_sessions.c.build_id)

coverage_parts = Table(
    "coverage_parts",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column(
        "session_id",
        String(100),
        ForeignKey("coverage_sessions.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("objects", Integer, nullable=False),
    Column("data", LargeBinary, nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
)
Index("ix_coverage_parts_session_id_id", coverage_parts.c.session_id, coverage_parts.c.id)

coverage_hits = Table(
    "coverage_hits",
    metadata,
    Column(
        "session_id",
        String(100),
        ForeignKey("coverage_sessions.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("class_idx", Integer, primary_key=True),
    Column("test", String(1000), primary_key=True),
    Column("probes", LargeBinary, nullable=False),
)

coverage_probes = Table(
    "coverage_probes",
    metadata,
    Column("agent_id", String(200), primary_key=True),
    Column("app", String(200), nullable=False),
    Column("build_id", BigId, ForeignKey("coverage_builds.id", ondelete="CASCADE"), nullable=False),
    Column("instance_id", String(100), nullable=False),
    Column("hub", String(200), nullable=False),
    Column("connected_at", UTCDateTime, nullable=False),
)
Index("ix_coverage_probes_app", coverage_probes.c.app)

# An admin action for the probes of another hub: that hub carries it out and writes the result.
coverage_actions = Table(
    "coverage_actions",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("hub", String(200), nullable=False),
    Column("target", JSON, nullable=False),
    Column("action", JSON, nullable=False),
    Column("requested_by", String(200), nullable=False),
    Column("state", String(20), nullable=False),
    Column("result", JSON),
    Column("created_at", UTCDateTime, nullable=False),
)
Index("ix_coverage_actions_hub_state", coverage_actions.c.hub, coverage_actions.c.state)
