"""API tokens: only a SHA-256 of each secret is stored; a revoked token is never found."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, select

from testfleet.store import Store
from testfleet.store import tokens as token_store
from testfleet.store.tables import tokens
from tests.store.helpers import NOW

pytestmark = pytest.mark.anyio


def stored_values(conn: Connection) -> list[Any]:
    """Every value of every column of every token row."""
    return [value for row in conn.execute(select(tokens)) for value in row]


async def test_create_find_and_revoke(store: Store) -> None:
    ci_id, ci_secret = await store.write(token_store.create_token, "ci", "operator", NOW, "admin")
    agent_id, agent_secret = await store.write(token_store.create_token, "agent", "agent", NOW)
    assert ci_secret.startswith(token_store.TOKEN_PREFIX) and ci_secret != agent_secret

    found = await store.read(token_store.find_token, ci_secret)
    assert found is not None
    assert (found.id, found.name, found.role) == (ci_id, "ci", "operator")
    assert found.created_by == "admin"
    assert found.revoked_at is None
    assert await store.read(token_store.find_token, ci_secret + "x") is None
    assert await store.read(token_store.has_live_token, "operator")

    revoked_at = NOW + timedelta(minutes=1)
    assert await store.write(token_store.revoke_token, ci_id, revoked_at) is True
    assert await store.read(token_store.find_token, ci_secret) is None
    assert await store.write(token_store.revoke_token, ci_id, revoked_at) is False  # once
    assert not await store.read(token_store.has_live_token, "operator")
    row = await store.read(token_store.get_token, ci_id)
    assert row is not None and row.revoked_at == revoked_at

    # The other token is untouched.
    other = await store.read(token_store.find_token, agent_secret)
    assert other is not None and other.id == agent_id
    assert [t.name for t in await store.read(token_store.list_tokens)] == ["ci", "agent"]


async def test_only_the_hash_of_a_secret_is_stored(store: Store) -> None:
    _, secret = await store.write(token_store.create_token, "ci", "viewer", NOW)
    values = await store.read(stored_values)
    assert not any(isinstance(v, str) and secret in v for v in values)
    assert hashlib.sha256(secret.encode()).hexdigest() in values


async def test_revoke_by_name_revokes_every_live_token_of_that_name(store: Store) -> None:
    secrets = [(await store.write(token_store.create_token, "ci", "operator", NOW))[1]]
    secrets.append((await store.write(token_store.create_token, "ci", "viewer", NOW))[1])
    _, keep = await store.write(token_store.create_token, "cd", "viewer", NOW)
    assert await store.write(token_store.revoke_by_name, "ci", NOW) == 2
    assert await store.write(token_store.revoke_by_name, "ci", NOW) == 0
    assert [await store.read(token_store.find_token, s) for s in secrets] == [None, None]
    assert await store.read(token_store.find_token, keep) is not None
