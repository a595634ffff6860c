"""Migrations create exactly the schema of `tables.metadata`, undo it, and run once."""

from __future__ import annotations

from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect

from testfleet.store import Store
from testfleet.store.jobs import get_job
from testfleet.store.migrate import alembic_config, downgrade_to_base, upgrade_to_head
from testfleet.store.tables import metadata
from tests.store.helpers import add_job, open_in_processes

pytestmark = pytest.mark.anyio

VERSION_TABLE = "alembic_version"


def schema_diff(conn: Connection) -> list[Any]:
    """What differs between the database and `metadata` (empty: identical)."""
    return list(compare_metadata(MigrationContext.configure(conn), metadata))


def table_names(conn: Connection) -> set[str]:
    """The tables in the database, Alembic's own included."""
    return set(inspect(conn).get_table_names())


def current_revision(conn: Connection) -> str | None:
    """The revision the database is at (None: base)."""
    return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str:
    """The newest revision among our migrations."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


async def test_upgrade_creates_exactly_the_metadata_schema(db_url: str) -> None:
    store = await Store.open(db_url)
    try:
        assert await store.read(schema_diff) == []
        assert await store.read(table_names) == set(metadata.tables) | {VERSION_TABLE}
        assert await store.read(current_revision) == head_revision()
    finally:
        await store.close()


async def test_downgrade_removes_every_table_and_upgrade_works_again(store: Store) -> None:
    await store.write(downgrade_to_base)
    assert await store.read(table_names) <= {VERSION_TABLE}
    assert await store.read(current_revision) is None

    await store.write(upgrade_to_head)
    assert await store.read(schema_diff) == []
    assert await store.read(current_revision) == head_revision()
    job_id = await store.write(add_job, "after-reupgrade")
    job = await store.read(get_job, job_id)
    assert job is not None and job.name == "after-reupgrade"


async def test_opening_twice_is_idempotent_and_keeps_the_data(db_url: str) -> None:
    first = await Store.open(db_url)
    try:
        job_id = await first.write(add_job, "kept")
    finally:
        await first.close()

    second = await Store.open(db_url)
    try:
        assert await second.read(schema_diff) == []
        assert await second.read(current_revision) == head_revision()
        job = await second.read(get_job, job_id)
        assert job is not None and job.name == "kept"
    finally:
        await second.close()


async def test_hubs_starting_together_on_an_empty_database_all_come_up(db_url: str) -> None:
    """Three hub processes started at once each migrate; none fails on the others' tables."""
    results = await open_in_processes(db_url, processes=3, stores_each=1, within=60)
    assert [(r.returncode, r.stderr[-500:]) for r in results] == [(0, "")] * 3
    store = await Store.open(db_url, migrate=False)
    try:
        assert await store.read(schema_diff) == []
        assert await store.read(current_revision) == head_revision()
    finally:
        await store.close()


async def test_two_stores_opened_at_once_in_one_process_both_come_up(
    db_url: str, request: pytest.FixtureRequest
) -> None:
    """Run in a child process (killed if it hangs) so a deadlock cannot hang the test run."""
    results = await open_in_processes(db_url, processes=1, stores_each=2, within=60)
    assert [(r.returncode, r.stderr[-500:]) for r in results] == [(0, "")]
