"""Bearer tokens with roles. With auth off, everyone is an admin named by X-Testfleet-Requestor.

A browser signed in to the web UI sends its token in the HttpOnly, SameSite=strict cookie
`testfleet_session` instead of the header. Whatever the credential, a request that changes
something (and every WebSocket) is refused when its `Origin` names another site; one that
rides on the cookie must also show it comes from the hub's own pages.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

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
SESSION_COOKIE = "testfleet_session"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class Principal:
    """Who is asking: the requestor recorded with every job and action."""

    name: str
    role: str
    token_id: int | None = None
    """The token it authenticated with (None when the hub runs without auth)."""
    via: Literal["token", "cookie", "none"] = "token"


def same_origin(connection: Request | WebSocket) -> bool | None:
    """Whether the request's `Origin` is the hub itself (None: no Origin was sent, as from
    the CLI, the agents and other programs)."""
    origin = connection.headers.get("origin")
    if origin is None:
        return None
    host = (connection.headers.get("host") or "").lower()
    return bool(host) and urlsplit(origin).netloc.lower() == host


def changes_something(connection: Request | WebSocket) -> bool:
    """True for methods that may change state, and for every WebSocket."""
    return isinstance(connection, WebSocket) or connection.method not in SAFE_METHODS


def check_origin(connection: Request | WebSocket, *, cookie: bool = False) -> None:
    """Refuse a state-changing request made by a page of another site (403
    `cross_origin`); with the cookie as credential, also one that cannot show where it
    comes from (no Origin and no `Sec-Fetch-Site: same-origin`)."""
    if not changes_something(connection):
        return
    verdict = same_origin(connection)
    if verdict is False:
        raise ApiError(
            403,
            "cross_origin",
            f"a page of {connection.headers.get('origin')} may not act on this hub; "
            "use the hub's own pages, or a program with a bearer token",
        )
    if cookie and verdict is None:
        fetch_site = connection.headers.get("sec-fetch-site")
        if fetch_site not in ("same-origin", "none"):
            raise ApiError(
                403,
                "origin_required",
                "a request signed in with the cookie must come from the hub's own pages "
                "(an Origin header); programs send 'Authorization: Bearer <token>'",
            )


def _bearer(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


async def authenticate(
    connection: Request | WebSocket, allowed: frozenset[str], *, query_token: bool = False
) -> Principal:
    """The caller, checked against the roles `allowed`; ApiError 401/403 otherwise. With
    `query_token`, a `token` query parameter counts too (browsers cannot set headers on a
    WebSocket; it is checked like the header)."""
    hub = connection.app.state.hub
    if not hub.config.auth_enabled:
        check_origin(connection)
        name = (connection.headers.get(REQUESTOR_HEADER) or "anonymous").strip()[:200]
        return Principal(name=name or "anonymous", role="admin", via="none")
    secret = _bearer(connection.headers.get("authorization"))
    via: Literal["token", "cookie"] = "token"
    if secret is None and query_token:
        secret = connection.query_params.get("token") or None
    if secret is None and (cookie := connection.cookies.get(SESSION_COOKIE)):
        secret, via = cookie, "cookie"
    check_origin(connection, cookie=via == "cookie")
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
    return Principal(name=row.name, role=row.role, token_id=row.id, via=via)


def require(allowed: frozenset[str]) -> Callable[[Request], Awaitable[Principal]]:
    """A FastAPI dependency that authenticates the caller for `allowed` roles."""

    async def dependency(request: Request) -> Principal:
        return await authenticate(request, allowed)

    return dependency
