"""API tokens: only a SHA-256 of each secret is stored."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from sqlalchemy import Connection, insert, select, update

from testfleet.store.records import TokenRecord
from testfleet.store.tables import tokens

TOKEN_PREFIX = "tf_"


def hash_secret(secret: str) -> str:
    """The stored form of a token."""
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret() -> str:
    """A fresh, unguessable token."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def create_token(
    conn: Connection, name: str, role: str, now: datetime, created_by: str | None = None
) -> tuple[int, str]:
    """Store a new token; returns its id and the secret (shown once, never stored)."""
    secret = new_secret()
    result = conn.execute(
        insert(tokens).values(
            name=name,
            role=role,
            secret_hash=hash_secret(secret),
            created_at=now,
            created_by=created_by,
        )
    )
    return int(result.inserted_primary_key[0]), secret  # type: ignore[index]


def find_token(conn: Connection, secret: str) -> TokenRecord | None:
    """The live (not revoked) token with this secret."""
    query = select(tokens).where(
        tokens.c.secret_hash == hash_secret(secret), tokens.c.revoked_at.is_(None)
    )
    row = conn.execute(query).first()
    return TokenRecord.from_row(row) if row is not None else None


def list_tokens(conn: Connection) -> list[TokenRecord]:
    """Every token, oldest first."""
    return [TokenRecord.from_row(row) for row in conn.execute(select(tokens).order_by(tokens.c.id))]


def get_token(conn: Connection, token_id: int) -> TokenRecord | None:
    """One token by id."""
    row = conn.execute(select(tokens).where(tokens.c.id == token_id)).first()
    return TokenRecord.from_row(row) if row is not None else None


def revoke_token(conn: Connection, token_id: int, now: datetime) -> bool:
    """Revoke a token; False if there is no live token with that id."""
    result = conn.execute(
        update(tokens)
        .where(tokens.c.id == token_id, tokens.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return result.rowcount > 0


def revoke_by_name(conn: Connection, name: str, now: datetime) -> int:
    """Revoke every live token called `name`; returns how many."""
    result = conn.execute(
        update(tokens)
        .where(tokens.c.name == name, tokens.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return int(result.rowcount)


def has_live_token(conn: Connection, role: str) -> bool:
    """True if some live token has `role`."""
    query = select(tokens.c.id).where(tokens.c.role == role, tokens.c.revoked_at.is_(None))
    return (conn.execute(query.limit(1))).first() is not None
