"""API tokens: only a SHA-256 of each secret is stored."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError

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
    conn: Connection,
    name: str,
    role: str,
    now: datetime,
    created_by: str | None = None,
    agent_name: str | None = None,
) -> tuple[int, str]:
    """Store a new token; returns its id and the secret (shown once, never stored).

    An agent token may name the one agent it is for (`agent_name`); a live token already
    for that name is revoked, so issuing one is how an admin replaces an agent's credential.
    """
    secret = new_secret()
    if agent_name is not None:
        conn.execute(
            update(tokens)
            .where(tokens.c.agent_name == agent_name, tokens.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )
    result = conn.execute(
        insert(tokens).values(
            name=name,
            role=role,
            secret_hash=hash_secret(secret),
            created_at=now,
            created_by=created_by,
            agent_name=agent_name,
        )
    )
    return int(result.inserted_primary_key[0]), secret  # type: ignore[index]


def bind_agent_name(conn: Connection, token_id: int, agent_name: str) -> str | None:
    """Bind an agent token to the agent name it registers with, the first time; None if the
    token may register as `agent_name`, else why it may not."""
    token = get_token(conn, token_id)
    if token is None or token.revoked_at is not None:
        return "the token is unknown or revoked"
    if token.agent_name == agent_name:
        return None
    if token.agent_name is not None:
        return f"this token is for agent {token.agent_name!r}, not {agent_name!r}"
    taken = conn.execute(
        select(tokens.c.id).where(tokens.c.agent_name == agent_name, tokens.c.revoked_at.is_(None))
    ).first()
    if taken is None:
        savepoint = conn.begin_nested()
        try:
            conn.execute(
                update(tokens).where(tokens.c.id == token_id).values(agent_name=agent_name)
            )
        except IntegrityError:  # another token bound the name at the same moment
            savepoint.rollback()
        else:
            savepoint.commit()
            return None
    return (
        f"agent name {agent_name!r} belongs to another credential; an admin can issue a new "
        f"one for it: testfleet token create --role agent --agent {agent_name}"
    )


def revoked_among(conn: Connection, token_ids: Sequence[int]) -> list[int]:
    """Those of `token_ids` that are revoked."""
    if not token_ids:
        return []
    query = select(tokens.c.id).where(
        tokens.c.id.in_(list(token_ids)), tokens.c.revoked_at.is_not(None)
    )
    return [int(token_id) for token_id in conn.execute(query).scalars()]


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
