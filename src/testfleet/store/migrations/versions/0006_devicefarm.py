"""device farm: device endpoints, gateway sessions and their history

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import testfleet.store.types

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC = testfleet.store.types.UTCDateTime


def upgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.add_column(sa.Column("url", sa.String(length=2000), nullable=True))
        batch.add_column(sa.Column("session_capabilities", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("holder_session_id", BigId, nullable=True))
        batch.add_column(sa.Column("last_used_at", UTC(), nullable=True))
        batch.create_index("ix_devices_holder_session_id", ["holder_session_id"])
    op.create_table(
        "driver_sessions",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("session_id", sa.String(length=200), nullable=True),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("requestor", sa.String(length=200), nullable=False),
        sa.Column("requested", sa.JSON(), nullable=False),
        sa.Column("capabilities", sa.JSON(), nullable=True),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.String(length=300), nullable=True),
        sa.Column("agent_id", BigId, nullable=True),
        sa.Column("node_url", sa.String(length=2000), nullable=True),
        sa.Column("browser", sa.Boolean(), nullable=False),
        sa.Column("hub", sa.String(length=200), nullable=True),
        sa.Column("created_at", UTC(), nullable=False),
        sa.Column("started_at", UTC(), nullable=True),
        sa.Column("ended_at", UTC(), nullable=True),
        sa.Column("last_command_at", UTC(), nullable=True),
        sa.Column("idle_timeout", sa.Integer(), nullable=False),
        sa.Column("idle_expires_at", UTC(), nullable=True),
        sa.Column("commands", sa.Integer(), nullable=False),
        sa.Column("end_reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["agents.id"],
            name=op.f("fk_driver_sessions_agent_id_agents"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_driver_sessions")),
        sa.UniqueConstraint("session_id", name=op.f("uq_driver_sessions_session_id")),
    )
    op.create_index(
        "ix_driver_sessions_state_idle_expires_at",
        "driver_sessions",
        ["state", "idle_expires_at"],
    )
    op.create_index("ix_driver_sessions_device_id", "driver_sessions", ["device_id"])
    op.create_table(
        "session_commands",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("session_id", BigId, nullable=False),
        sa.Column("at", UTC(), nullable=False),
        sa.Column("method", sa.String(length=10), nullable=False),
        sa.Column("command", sa.String(length=300), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("error", sa.String(length=100), nullable=True),
        sa.Column("duration_ms", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["driver_sessions.id"],
            name=op.f("fk_session_commands_session_id_driver_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_session_commands")),
    )
    op.create_index("ix_session_commands_session_id_id", "session_commands", ["session_id", "id"])
    op.create_table(
        "session_screenshots",
        sa.Column("session_id", BigId, nullable=False),
        sa.Column("taken_at", UTC(), nullable=False),
        sa.Column("png", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["driver_sessions.id"],
            name=op.f("fk_session_screenshots_session_id_driver_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("session_id", name=op.f("pk_session_screenshots")),
    )


def downgrade() -> None:
    op.drop_table("session_screenshots")
    op.drop_index("ix_session_commands_session_id_id", table_name="session_commands")
    op.drop_table("session_commands")
    op.drop_index("ix_driver_sessions_device_id", table_name="driver_sessions")
    op.drop_index("ix_driver_sessions_state_idle_expires_at", table_name="driver_sessions")
    op.drop_table("driver_sessions")
    with op.batch_alter_table("devices") as batch:
        batch.drop_index("ix_devices_holder_session_id")
        batch.drop_column("last_used_at")
        batch.drop_column("holder_session_id")
        batch.drop_column("session_capabilities")
        batch.drop_column("url")
