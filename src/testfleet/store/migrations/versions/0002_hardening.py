"""hardening: agent tokens are for one agent name; why a test waits

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 15:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tokens") as batch:
        batch.add_column(sa.Column("agent_name", sa.String(length=100), nullable=True))
    op.create_index(
        "ix_tokens_agent_name_live",
        "tokens",
        ["agent_name"],
        unique=True,
        postgresql_where=sa.text("revoked_at IS NULL"),
        sqlite_where=sa.text("revoked_at IS NULL"),
    )
    op.create_index("ix_tokens_revoked_at", "tokens", ["revoked_at"])
    with op.batch_alter_table("job_tests") as batch:
        batch.add_column(sa.Column("waiting", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("job_tests") as batch:
        batch.drop_column("waiting")
    op.drop_index("ix_tokens_revoked_at", table_name="tokens")
    op.drop_index("ix_tokens_agent_name_live", table_name="tokens")
    with op.batch_alter_table("tokens") as batch:
        batch.drop_column("agent_name")
