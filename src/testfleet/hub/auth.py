"""Bearer tokens with roles. With auth off, everyone is an admin named by X-Testfleet-Requestor."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import Request
from starlette.websockets import WebSocket

from testfleet.hub.errors import ApiError
from testfleet.protocol.version import REQUESTOR_HEADER
from testfleet.store.tokens import find_token

ROLES = ("admin", "operator", "viewer", "agent")
# What each role may do; admin may do everything.
READ = frozenset({"admin", "operator", "viewer"})
OPERATE = frozenset({"admin", "operator"})
ADMIN = frozenset({"admin"})
AGENT = frozenset({"admin", "agent"})


@dataclass(frozen=True)
class Principal:
    """Who is asking: the requestor recorded with every job and action."""

    name: str
    role: str
    token_id: int | None = None
    """The token it authenticated with (None when the hub runs without auth)."""


def _bearer(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


async def authenticate(connection: Request | WebSocket, allowed: frozenset[str]) -> Principal:
    """The caller, checked against the roles `allowed`; ApiError 401/403 otherwise."""
    hub = connection.app.state.hub
    if not hub.config.auth_enabled:
        name = (connection.headers.get(REQUESTOR_HEADER) or "anonymous").strip()[:200]
        return Principal(name=name or "anonymous", role="admin")
    secret = _bearer(connection.headers.get("authorization"))
    if secret is None:
        raise ApiError(
            401,
            "unauthenticated",
            "this hub requires a token: send 'Authorization: Bearer <token>' "
            "(testfleet: --token or TESTFLEET_TOKEN)",
        )
    row = await hub.store.read(find_token, secret)
    if row is None:
        raise ApiError(401, "invalid_token", "the token is unknown or revoked")
    if row.role not in allowed:
        raise ApiError(
            403,
            "forbidden",
            f"role {row.role!r} may not do this; it needs one of: {', '.join(sorted(allowed))}",
        )
    return Principal(name=row.name, role=row.role, token_id=row.id)


def require(allowed: frozenset[str]) -> Callable[[Request], Awaitable[Principal]]:
    """A FastAPI dependency that authenticates the caller for `allowed` roles."""

    async def dependency(request: Request) -> Principal:
        return await authenticate(request, allowed)

    return dependency
