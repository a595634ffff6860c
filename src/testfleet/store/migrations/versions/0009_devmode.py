"""devmode: developer sessions, commands relayed to other hubs, tasks' pause state

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 18:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import testfleet.store.types

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "developer_sessions",
        sa.Column("job_id", _ID, nullable=False),
        sa.Column("developer_id", _ID, nullable=True),
        sa.Column("developer_name", sa.String(length=200), nullable=False),
        sa.Column("started_at", testfleet.store.types.UTCDateTime(), nullable=False),
        sa.Column("tab_count", sa.Integer(), nullable=False),
        sa.Column("seen_at", testfleet.store.types.UTCDateTime(), nullable=False),
        sa.Column("pause_at", sa.String(length=200), nullable=True),
        sa.Column("pause_on_failure", sa.Boolean(), nullable=False),
        sa.Column("pause_on_next", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["jobs.id"],
            name=op.f("fk_developer_sessions_job_id_jobs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("job_id", name=op.f("pk_developer_sessions")),
    )
    with op.batch_alter_table("developer_sessions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_developer_sessions_seen_at"), ["seen_at"], unique=False
        )
    op.create_table(
        "developer_commands",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("job_id", _ID, nullable=False),
        sa.Column("agent_id", _ID, nullable=False),
        sa.Column("message", sa.JSON(), nullable=False),
        sa.Column("created_at", testfleet.store.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["agents.id"],
            name=op.f("fk_developer_commands_agent_id_agents"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["jobs.id"],
            name=op.f("fk_developer_commands_job_id_jobs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_developer_commands")),
    )
    with op.batch_alter_table("developer_commands", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_developer_commands_job_id"), ["job_id"], unique=False)
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("paused", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("paused_step", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_column("paused_step")
        batch_op.drop_column("paused")
    with op.batch_alter_table("developer_commands", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_developer_commands_job_id"))
    op.drop_table("developer_commands")
    with op.batch_alter_table("developer_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_developer_sessions_seen_at"))
    op.drop_table("developer_sessions")
