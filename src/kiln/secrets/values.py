"""Secrets inside a scope: values encrypted at rest, listed by key only, read back with READ."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime

from cryptography.fernet import InvalidToken
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from kiln.errors import InternalError, InvalidParameterValue, ResourceDoesNotExist
from kiln.secrets.crypto import SecretBox
from kiln.secrets.permissions import Caller, Permission, require_permission
from kiln.secrets.scopes import get_scope, validate_name
from kiln.store.models import Secret, SecretScope, now_utc

__all__ = [
    "SecretMetadata",
    "decode_value",
    "delete_secret",
    "get_secret",
    "list_secrets",
    "put_secret",
]


@dataclass(frozen=True, slots=True)
class SecretMetadata:
    """What listing a scope reveals about a secret: never its value."""

    key: str
    last_updated: datetime


def decode_value(string_value: str | None, bytes_value: str | None, limit: int) -> bytes:
    """The bytes of a put request's value (exactly one of the two forms), at most `limit`."""
    if string_value is not None and bytes_value is not None:
        raise InvalidParameterValue("Exactly one of string_value and bytes_value must be given.")
    if string_value is not None:
        value = string_value.encode("utf-8")
    elif bytes_value is not None:
        try:
            value = base64.b64decode(bytes_value, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidParameterValue("bytes_value must be base64-encoded.") from None
    else:
        raise InvalidParameterValue("One of string_value and bytes_value must be given.")
    if len(value) > limit:
        raise InvalidParameterValue(
            f"The secret value is {len(value)} bytes; the maximum allowed size is {limit} bytes."
        )
    return value


async def _find(session: AsyncSession, scope: SecretScope, key: str) -> Secret:
    row = await session.scalar(select(Secret).where(Secret.scope_id == scope.id, Secret.key == key))
    if row is None:
        raise ResourceDoesNotExist(f"Secret {key} does not exist in scope {scope.name}!")
    return row


async def put_secret(
    session: AsyncSession,
    box: SecretBox,
    caller: Caller,
    scope_name: str,
    key: str,
    *,
    string_value: str | None,
    bytes_value: str | None,
    limit: int,
) -> None:
    """Create or overwrite a secret (needs WRITE); only its ciphertext is stored."""
    scope = await get_scope(session, scope_name)
    await require_permission(session, scope, caller, Permission.WRITE)
    validate_name("secret key", key)
    encrypted = box.encrypt(decode_value(string_value, bytes_value, limit))
    row = await session.scalar(select(Secret).where(Secret.scope_id == scope.id, Secret.key == key))
    if row is None:
        session.add(
            Secret(scope_id=scope.id, key=key, value_encrypted=encrypted, updated_at=now_utc())
        )
    else:
        row.value_encrypted = encrypted
        row.updated_at = now_utc()
    await session.flush()


async def list_secrets(
    session: AsyncSession, caller: Caller, scope_name: str
) -> list[SecretMetadata]:
    """The keys of a scope with their last update times (needs READ)."""
    scope = await get_scope(session, scope_name)
    await require_permission(session, scope, caller, Permission.READ)
    rows = await session.execute(
        select(Secret.key, Secret.updated_at)
        .where(Secret.scope_id == scope.id)
        .order_by(Secret.key)
    )
    return [SecretMetadata(key=key, last_updated=updated) for key, updated in rows.all()]


async def delete_secret(session: AsyncSession, caller: Caller, scope_name: str, key: str) -> None:
    """Delete one secret (needs WRITE)."""
    scope = await get_scope(session, scope_name)
    await require_permission(session, scope, caller, Permission.WRITE)
    await session.delete(await _find(session, scope, key))
    await session.flush()


async def get_secret(
    session: AsyncSession, box: SecretBox, caller: Caller, scope_name: str, key: str
) -> bytes:
    """The plaintext of one secret (needs READ): the only way a value leaves the store."""
    scope = await get_scope(session, scope_name)
    await require_permission(session, scope, caller, Permission.READ)
    row = await _find(session, scope, key)
    try:
        return box.decrypt(row.value_encrypted)
    except InvalidToken:
        # The data dir's key changed since the value was written; never guess.
        raise InternalError(
            f"Secret {key} in scope {scope.name} cannot be decrypted with this workspace's key."
        ) from None
