"""Token API and Token Management API wire shapes."""

from __future__ import annotations

from pydantic import BaseModel

from kiln.store.models import Token, to_epoch_ms

__all__ = [
    "CreateOboTokenRequest",
    "CreateTokenRequest",
    "CreateTokenResponse",
    "PublicTokenInfo",
    "RevokeTokenRequest",
    "TokenInfo",
]


class CreateTokenRequest(BaseModel):
    lifetime_seconds: int | None = None
    comment: str | None = None


class CreateOboTokenRequest(BaseModel):
    application_id: str
    lifetime_seconds: int | None = None
    comment: str | None = None


class RevokeTokenRequest(BaseModel):
    token_id: str


class PublicTokenInfo(BaseModel):
    token_id: str
    creation_time: int
    expiry_time: int
    comment: str | None = None

    @classmethod
    def of(cls, row: Token) -> PublicTokenInfo:
        return cls(
            token_id=row.token_id,
            creation_time=to_epoch_ms(row.created_at),
            expiry_time=to_epoch_ms(row.expires_at) if row.expires_at else -1,
            comment=row.comment,
        )


class TokenInfo(PublicTokenInfo):
    """The admin view (token-management) adds the owner."""

    created_by_id: int
    created_by_username: str
    owner_id: int

    @classmethod
    def of_owned(cls, row: Token, user_name: str) -> TokenInfo:
        public = PublicTokenInfo.of(row)
        return cls(
            **public.model_dump(),
            created_by_id=row.user_id,
            created_by_username=user_name,
            owner_id=row.user_id,
        )


class CreateTokenResponse(BaseModel):
    token_value: str
    token_info: PublicTokenInfo
