"""API tokens: only a SHA-256 of each secret is stored."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from testfleet.store.tables import tokens

TOKEN_PREFIX = "tf_"


def hash_secret(secret: str) -> str:
    """The stored form of a token."""
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret() -> str:
    """A fresh, unguessable token."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


async def create_token(
    conn: AsyncConnection, name: str, role: str, now: datetime, created_by: str | None = None
) -> tuple[int, str]:
    """Store a new token; returns its id and the secret (shown once, never stored)."""
    secret = new_secret()
    result = await conn.execute(
        insert(tokens).values(
            name=name,
            role=role,
            secret_hash=hash_secret(secret),
            created_at=now,
            created_by=created_by,
        )
    )
    return int(result.inserted_primary_key[0]), secret  # type: ignore[index]


async def find_token(conn: AsyncConnection, secret: str) -> Row[Any] | None:
    """The live (not revoked) token with this secret."""
    query = select(tokens).where(
        tokens.c.secret_hash == hash_secret(secret), tokens.c.revoked_at.is_(None)
    )
    return (await conn.execute(query)).first()


async def list_tokens(conn: AsyncConnection) -> Sequence[Row[Any]]:
    """Every token, oldest first."""
    return (await conn.execute(select(tokens).order_by(tokens.c.id))).all()


async def get_token(conn: AsyncConnection, token_id: int) -> Row[Any] | None:
    """One token by id."""
    return (await conn.execute(select(tokens).where(tokens.c.id == token_id))).first()


async def revoke_token(conn: AsyncConnection, token_id: int, now: datetime) -> bool:
    """Revoke a token; False if there is no live token with that id."""
    result = await conn.execute(
        update(tokens)
        .where(tokens.c.id == token_id, tokens.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return result.rowcount > 0


async def revoke_by_name(conn: AsyncConnection, name: str, now: datetime) -> int:
    """Revoke every live token called `name`; returns how many."""
    result = await conn.execute(
        update(tokens)
        .where(tokens.c.name == name, tokens.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return int(result.rowcount)


async def has_live_token(conn: AsyncConnection, role: str) -> bool:
    """True if some live token has `role`."""
    query = select(tokens.c.id).where(tokens.c.role == role, tokens.c.revoked_at.is_(None))
    return (await conn.execute(query.limit(1))).first() is not None
