"""Alembic environment: migrations run on the connection the store passes in."""

from __future__ import annotations

from alembic import context

from testfleet.store.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("testfleet migrations run through Store.migrate(), not the alembic CLI")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=True,
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
