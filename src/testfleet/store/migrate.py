"""Run Alembic's migrations on a connection we already hold."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection

SCRIPT_LOCATION = "testfleet.store:migrations"


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config for our migrations, sharing `connection` when one is given."""
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    config.attributes["connection"] = connection
    return config


MIGRATION_LOCK_ID = 0x7465737466  # "testf": hubs sharing a PostgreSQL migrate one at a time


def upgrade_to_head(connection: Connection) -> None:
    """Apply every migration not yet applied (called through `run_sync`)."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_ID})")
    command.upgrade(alembic_config(connection), "head")


def downgrade_to_base(connection: Connection) -> None:
    """Undo every migration (for tests of the migrations themselves)."""
    command.downgrade(alembic_config(connection), "base")
