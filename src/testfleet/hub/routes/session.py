"""Signing in to the web UI: a token exchanged for an HttpOnly, SameSite=strict cookie."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from testfleet.hub.auth import READ, SESSION_COOKIE, check_origin
from testfleet.hub.errors import ApiError
from testfleet.hub.routes.deps import HubDep, Reader
from testfleet.protocol.lab import Me, SignIn
from testfleet.store.tokens import find_token

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])
COOKIE_DAYS = 30


@router.get("/me", response_model=Me, summary="Who the hub takes the caller for")
async def me(hub: HubDep, who: Reader) -> Me:
    return Me(
        name=who.name,
        role=who.role,
        auth_enabled=hub.config.auth_enabled,
        via=who.via,
        server_id=hub.server_id,
    )


@router.post(
    "/session",
    response_model=Me,
    summary="Sign in: the token is checked and set as the session cookie",
)
async def sign_in(body: SignIn, request: Request, response: Response, hub: HubDep) -> Me:
    check_origin(request)
    if not hub.config.auth_enabled:
        raise ApiError(409, "auth_disabled", "this hub runs without auth: no sign-in is needed")
    token = body.token.strip()
    row = await hub.store.read(find_token, token)
    if row is None:
        raise ApiError(401, "invalid_token", "the token is unknown or revoked")
    if row.role not in READ:
        raise ApiError(
            403,
            "forbidden",
            f"a token with role {row.role!r} cannot sign in to the web UI; use an admin, "
            "operator or viewer token",
        )
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=COOKIE_DAYS * 86400,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return Me(
        name=row.name,
        role=row.role,
        auth_enabled=True,
        via="cookie",
        server_id=hub.server_id,
    )


@router.delete("/session", status_code=204, summary="Sign out: the session cookie is removed")
async def sign_out(request: Request) -> Response:
    check_origin(request)
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response
