"""The coverage tables (Drill4J sessions): builds, their classes and functions, probes,
sessions, their parts and folded hits, and actions handed between hubs."""

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
    String,
    Table,
    Text,
    UniqueConstraint,
)

from testfleet.store.tables.core import metadata
from testfleet.store.types import BigId, UTCDateTime

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
