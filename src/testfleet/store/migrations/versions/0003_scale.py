"""scale: hubs' heartbeats, idempotency keys, devices' change times

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 16:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import testfleet.store.types

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "hubs",
        sa.Column("server_id", sa.String(length=200), nullable=False),
        sa.Column("started_at", testfleet.store.types.UTCDateTime(), nullable=False),
        sa.Column("heartbeat_at", testfleet.store.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("server_id", name=op.f("pk_hubs")),
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("requestor", sa.String(length=200), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("job_id", BigId, nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", testfleet.store.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["jobs.id"],
            name=op.f("fk_idempotency_keys_job_id_jobs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("requestor", "key", name=op.f("pk_idempotency_keys")),
    )
    op.create_index(
        "ix_idempotency_keys_created_at", "idempotency_keys", ["created_at"], unique=False
    )
    with op.batch_alter_table("devices") as batch:
        batch.add_column(
            sa.Column("changed_at", testfleet.store.types.UTCDateTime(), nullable=True)
        )
    op.create_index("ix_devices_changed_at", "devices", ["changed_at"], unique=False)
    op.create_index("ix_devices_agent_id", "devices", ["agent_id"], unique=False)
    op.create_index("ix_agents_hub_state", "agents", ["hub", "state"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_agents_hub_state", table_name="agents")
    op.drop_index("ix_devices_agent_id", table_name="devices")
    op.drop_index("ix_devices_changed_at", table_name="devices")
    with op.batch_alter_table("devices") as batch:
        batch.drop_column("changed_at")
    op.drop_index("ix_idempotency_keys_created_at", table_name="idempotency_keys")
    op.drop_table("idempotency_keys")
    op.drop_table("hubs")
