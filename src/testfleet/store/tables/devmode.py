"""Developer mode's tables: who holds which job, and commands on their way to another hub."""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, Column, ForeignKey, Index, Integer, String, Table

from testfleet.store.tables.core import metadata
from testfleet.store.types import BigId, UTCDateTime

# One developer per running job (openQA's DeveloperSessions): the holder, how many of their
# tabs are open, when a tab last said it is there, and the pause flags they set.
developer_sessions = Table(
    "developer_sessions",
    metadata,
    Column("job_id", BigId, ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
    Column("developer_id", BigId),  # the holder's token (None when the hub runs without auth)
    Column("developer_name", String(200), nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("tab_count", Integer, nullable=False, default=0),
    Column("seen_at", UTCDateTime, nullable=False),
    Column("pause_at", String(200)),
    Column("pause_on_failure", Boolean, nullable=False, default=False),
    Column("pause_on_next", Boolean, nullable=False, default=False),
)
Index("ix_developer_sessions_seen_at", developer_sessions.c.seen_at)

# A developer command for an agent connected to another hub: that hub is notified with the
# row's id, sends the message and deletes the row.
developer_commands = Table(
    "developer_commands",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("job_id", BigId, ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
    Column("agent_id", BigId, ForeignKey("agents.id", ondelete="CASCADE"), nullable=False),
    Column("message", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)
Index("ix_developer_commands_job_id", developer_commands.c.job_id)
