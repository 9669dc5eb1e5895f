"""Token API (/api/2.0/token) and the admins' Token Management API."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from kiln.errors import InvalidParameterValue
from kiln.identity import require_admin, tokens, users
from kiln.server.deps import CurrentPrincipal, Session
from kiln.server.schemas.tokens import (
    CreateOboTokenRequest,
    CreateTokenRequest,
    CreateTokenResponse,
    PublicTokenInfo,
    RevokeTokenRequest,
    TokenInfo,
)

router = APIRouter(tags=["tokens"])


@router.post("/api/2.0/token/create")
async def create_token(
    body: CreateTokenRequest, session: Session, me: CurrentPrincipal
) -> CreateTokenResponse:
    """Create a token for the calling user."""
    issued = await tokens.create_token(
        session, me.user_id, comment=body.comment, lifetime_seconds=body.lifetime_seconds
    )
    return CreateTokenResponse(token_value=issued.value, token_info=PublicTokenInfo.of(issued.row))


@router.get("/api/2.0/token/list")
async def list_tokens(session: Session, me: CurrentPrincipal) -> dict[str, list[PublicTokenInfo]]:
    """The calling user's tokens (never their values)."""
    rows = await tokens.list_tokens(session, me.user_id)
    return {"token_infos": [PublicTokenInfo.of(r) for r in rows]}


@router.post("/api/2.0/token/delete")
async def revoke_token(
    body: RevokeTokenRequest, session: Session, me: CurrentPrincipal
) -> dict[str, Any]:
    """Revoke one of the calling user's tokens."""
    await tokens.delete_token(session, body.token_id, me.user_id)
    return {}


@router.get("/api/2.0/token-management/tokens")
async def admin_list_tokens(
    session: Session,
    me: CurrentPrincipal,
    created_by_id: int | None = None,
    created_by_username: str | None = None,
) -> dict[str, list[TokenInfo]]:
    """Every token in the workspace, optionally of one user (admins only)."""
    require_admin(me)
    owner: int | None = created_by_id
    if created_by_username is not None:
        user = await users.get_user_by_name(session, created_by_username)
        if user is None:
            return {"token_infos": []}
        owner = user.id
    rows = await tokens.list_tokens(session, owner)
    names = {u.id: u.user_name for u in (await users.list_users(session))[1]}
    return {"token_infos": [TokenInfo.of_owned(r, names.get(r.user_id, "")) for r in rows]}


@router.get("/api/2.0/token-management/tokens/{token_id}")
async def admin_get_token(
    token_id: str, session: Session, me: CurrentPrincipal
) -> dict[str, TokenInfo]:
    """One token's metadata (admins only)."""
    require_admin(me)
    row = await tokens.get_token(session, token_id)
    owner = await users.get_user(session, row.user_id)
    return {"token_info": TokenInfo.of_owned(row, owner.user_name)}


@router.delete("/api/2.0/token-management/tokens/{token_id}")
async def admin_delete_token(
    token_id: str, session: Session, me: CurrentPrincipal
) -> dict[str, Any]:
    """Revoke any user's token (admins only)."""
    require_admin(me)
    await tokens.delete_token(session, token_id)
    return {}


@router.post("/api/2.0/token-management/on-behalf-of/tokens")
async def admin_create_obo_token(
    body: CreateOboTokenRequest, session: Session, me: CurrentPrincipal
) -> dict[str, Any]:
    """Create a token on behalf of another principal, named by id (admins only)."""
    require_admin(me)
    try:
        user_id = int(body.application_id)
    except ValueError as exc:
        raise InvalidParameterValue("application_id must be a principal id") from exc
    owner = await users.get_user(session, user_id)
    issued = await tokens.create_token(
        session, owner.id, comment=body.comment, lifetime_seconds=body.lifetime_seconds
    )
    return {
        "token_value": issued.value,
        "token_info": TokenInfo.of_owned(issued.row, owner.user_name).model_dump(),
    }
