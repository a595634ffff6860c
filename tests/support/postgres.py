"""A fresh PostgreSQL database per test; CI must have PostgreSQL (it fails, never skips)."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/test"


def server_url() -> str:
    """The PostgreSQL server the tests use (`TESTFLEET_TEST_POSTGRES`)."""
    return os.environ.get("TESTFLEET_TEST_POSTGRES", DEFAULT_SERVER)


async def _admin(sql: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(server_url(), timeout=10)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


@contextmanager
def fresh_database() -> Iterator[str]:
    """Create an empty database; yield its URL; drop it afterwards.

    Unreachable PostgreSQL fails the test when CI=true and skips it elsewhere.
    """
    name = f"tf_test_{uuid.uuid4().hex[:12]}"
    try:
        asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    except Exception as error:  # unreachable, refused, no such database, auth...
        message = f"PostgreSQL at {server_url()} is unreachable: {error}"
        if os.environ.get("CI") == "true":
            pytest.fail(message + " (CI must run the PostgreSQL tests)")
        pytest.skip(message)
    try:
        yield server_url().rsplit("/", 1)[0] + f"/{name}"
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
