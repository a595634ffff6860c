"""web UI: indexes for the overview and the job list's time filter; devices' claimed_at

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import testfleet.store.types

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.add_column(
            sa.Column("claimed_at", testfleet.store.types.UTCDateTime(), nullable=True)
        )
    op.create_index(op.f("ix_jobs_created_at"), "jobs", ["created_at"])  # ended_at: 0004


def downgrade() -> None:
    op.drop_index(op.f("ix_jobs_created_at"), table_name="jobs")
    with op.batch_alter_table("devices") as batch:
        batch.drop_column("claimed_at")
