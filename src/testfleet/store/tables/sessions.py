"""The WebDriver gateway's tables: sessions, their commands and final screenshots."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
)

from testfleet.store.tables.core import metadata
from testfleet.store.types import BigId, UTCDateTime

# WebDriver sessions through the hub's gateway: the session -> device -> node map (any hub
# routes any session from it) and their history.
driver_sessions = Table(
    "driver_sessions",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("session_id", String(200), unique=True),
    Column("state", String(20), nullable=False),
    Column("requestor", String(200), nullable=False),
    Column("requested", JSON, nullable=False),
    Column("capabilities", JSON),
    Column("priority", Integer, nullable=False, default=0),
    Column("device_id", String(300)),
    Column("agent_id", BigId, ForeignKey("agents.id", ondelete="SET NULL")),
    Column("node_url", String(2000)),
    Column("browser", Boolean, nullable=False, default=False),
    Column("hub", String(200)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("started_at", UTCDateTime),
    Column("ended_at", UTCDateTime),
    Column("last_command_at", UTCDateTime),
    Column("idle_timeout", Integer, nullable=False),
    Column("idle_expires_at", UTCDateTime),
    Column("commands", Integer, nullable=False, default=0),
    Column("end_reason", Text),
)
Index(
    "ix_driver_sessions_state_idle_expires_at",
    driver_sessions.c.state,
    driver_sessions.c.idle_expires_at,
)
Index("ix_driver_sessions_device_id", driver_sessions.c.device_id)

session_commands = Table(
    "session_commands",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column(
        "session_id",
        BigId,
        ForeignKey("driver_sessions.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("at", UTCDateTime, nullable=False),
    Column("method", String(10), nullable=False),
    Column("command", String(300), nullable=False),
    Column("status", Integer, nullable=False),
    Column("error", String(100)),
    Column("duration_ms", Float, nullable=False),
)
Index("ix_session_commands_session_id_id", session_commands.c.session_id, session_commands.c.id)

session_screenshots = Table(
    "session_screenshots",
    metadata,
    Column(
        "session_id",
        BigId,
        ForeignKey("driver_sessions.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("taken_at", UTCDateTime, nullable=False),
    Column("png", LargeBinary, nullable=False),
)
