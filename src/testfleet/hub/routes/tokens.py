"""Token administration (admins only)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from testfleet.hub.errors import ApiError
from testfleet.hub.routes.deps import Admin, HubDep, TokenId
from testfleet.protocol.api import TokenCreate, TokenCreated, TokenInfo, TokenList
from testfleet.protocol.wire import utcnow
from testfleet.store import tokens as token_store

router = APIRouter(prefix="/api/v1/tokens", tags=["tokens"])


@router.post("", status_code=201, response_model=TokenCreated, summary="Create a token")
async def create_token(body: TokenCreate, hub: HubDep, who: Admin) -> TokenCreated:
    now = utcnow()
    token_id, secret = await hub.store.write(
        token_store.create_token,
        body.name,
        body.role,
        now,
        created_by=who.name,
        agent_name=body.agent,
    )
    return TokenCreated(
        token_id=token_id,
        name=body.name,
        role=body.role,
        created_at=now,
        created_by=who.name,
        agent=body.agent,
        token=secret,
    )


@router.get("", response_model=TokenList, summary="List tokens (never their secrets)")
async def list_tokens(hub: HubDep, _: Admin) -> TokenList:
    rows = await hub.store.read(token_store.list_tokens)
    return TokenList(
        server_id=hub.server_id,
        tokens=[
            TokenInfo(
                token_id=r.id,
                name=r.name,
                role=r.role,
                created_at=r.created_at,
                created_by=r.created_by,
                revoked_at=r.revoked_at,
                agent=r.agent_name,
            )
            for r in rows
        ],
    )


@router.delete("/{token_id}", status_code=204, summary="Revoke a token")
async def revoke_token(token_id: TokenId, hub: HubDep, _: Admin) -> Response:
    revoked = await hub.store.write(token_store.revoke_token, token_id, utcnow())
    hub.revocations.revoked(token_id)
    if not revoked:
        raise ApiError(
            404,
            "token_not_found",
            f"no live token with id {token_id} (unknown or already revoked)",
        )
    return Response(status_code=204)
