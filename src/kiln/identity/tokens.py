"""Personal access tokens: `dapi` + public id + secret; only a SHA-256 of the secret is kept.

The id half locates the row, the secret half is compared in constant time, so neither a
timing side channel on the lookup nor a leaked database reveals a usable token.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from kiln.errors import InvalidParameterValue, ResourceDoesNotExist
from kiln.identity.principal import ADMINS_GROUP, Principal
from kiln.store.models import Group, GroupMember, Token, User, now_utc

__all__ = [
    "IssuedToken",
    "authenticate",
    "create_token",
    "delete_token",
    "get_token",
    "list_tokens",
]

PREFIX = "dapi"
_ID_HEX = 16  # 64-bit public id
_SECRET_HEX = 32  # 128-bit secret
MAX_LIFETIME_SECONDS = 730 * 24 * 3600


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A token at creation: the only moment its value exists outside the client."""

    value: str
    row: Token


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _split(value: str) -> tuple[str, str] | None:
    if not value.startswith(PREFIX) or len(value) != len(PREFIX) + _ID_HEX + _SECRET_HEX:
        return None
    body = value[len(PREFIX) :]
    return body[:_ID_HEX], body[_ID_HEX:]


async def create_token(
    session: AsyncSession,
    user_id: int,
    *,
    comment: str | None = None,
    lifetime_seconds: int | None = None,
) -> IssuedToken:
    """Issue a new token for `user_id`; no lifetime (or ≤ 0) means it never expires."""
    expires_at: datetime | None = None
    if lifetime_seconds is not None and lifetime_seconds > 0:
        if lifetime_seconds > MAX_LIFETIME_SECONDS:
            raise InvalidParameterValue(
                f"lifetime_seconds must be at most {MAX_LIFETIME_SECONDS} (730 days)"
            )
        expires_at = now_utc() + timedelta(seconds=lifetime_seconds)
    token_id = secrets.token_hex(_ID_HEX // 2)
    secret = secrets.token_hex(_SECRET_HEX // 2)
    row = Token(
        token_id=token_id,
        user_id=user_id,
        secret_hash=_hash(secret),
        comment=comment,
        expires_at=expires_at,
        created_at=now_utc(),
    )
    session.add(row)
    await session.flush()
    return IssuedToken(value=f"{PREFIX}{token_id}{secret}", row=row)


async def authenticate(
    session: AsyncSession, value: str
) -> tuple[Principal, datetime | None] | None:
    """(principal, token expiry) for a bearer token, or None if unknown, wrong or expired."""
    parts = _split(value)
    if parts is None:
        return None
    token_id, secret = parts
    is_admin = exists().where(
        GroupMember.member_user_id == User.id,
        GroupMember.group_id == Group.id,
        Group.display_name == ADMINS_GROUP,
    )
    row = (
        await session.execute(
            select(Token.secret_hash, Token.expires_at, User.id, User.user_name, User.active)
            .add_columns(is_admin.label("is_admin"))
            .join(User, User.id == Token.user_id)
            .where(Token.token_id == token_id)
        )
    ).first()
    if row is None:
        # Compare anyway so an unknown id costs the same as a wrong secret.
        hmac.compare_digest(_hash(secret), "0" * 64)
        return None
    secret_hash, expires_at, user_id, user_name, active, admin = row
    if not hmac.compare_digest(_hash(secret), secret_hash):
        return None
    if not active or (expires_at is not None and expires_at <= now_utc()):
        return None
    principal = Principal(
        user_id=user_id, user_name=user_name, is_admin=bool(admin), token_id=token_id
    )
    return principal, expires_at


async def list_tokens(session: AsyncSession, user_id: int | None = None) -> list[Token]:
    """Tokens of one user, or of everyone when `user_id` is None (admins)."""
    query = select(Token).order_by(Token.id)
    if user_id is not None:
        query = query.where(Token.user_id == user_id)
    return list((await session.scalars(query)).all())


async def get_token(session: AsyncSession, token_id: str, user_id: int | None = None) -> Token:
    """One token by id, confined to `user_id` when given."""
    query = select(Token).where(Token.token_id == token_id)
    if user_id is not None:
        query = query.where(Token.user_id == user_id)
    row = await session.scalar(query)
    if row is None:
        raise ResourceDoesNotExist(f"Token with id {token_id} does not exist.")
    return row


async def delete_token(session: AsyncSession, token_id: str, user_id: int | None = None) -> None:
    """Revoke a token; at once, since every request looks its token up."""
    await session.delete(await get_token(session, token_id, user_id))
