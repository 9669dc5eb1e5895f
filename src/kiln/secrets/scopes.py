"""Secret scopes: named containers of secrets, each with its own ACL."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from kiln.errors import InvalidParameterValue, ResourceAlreadyExists, ResourceDoesNotExist
from kiln.secrets.permissions import ALL_USERS, Caller, Permission, require_permission
from kiln.store.models import SecretAcl, SecretScope, now_utc

__all__ = [
    "DATABRICKS_BACKEND",
    "MAX_NAME_LENGTH",
    "create_scope",
    "delete_scope",
    "get_scope",
    "list_scopes",
    "validate_name",
]

DATABRICKS_BACKEND = "DATABRICKS"
MAX_NAME_LENGTH = 128
_NAME = re.compile(r"[A-Za-z0-9_.@-]+")


def validate_name(kind: str, name: str) -> str:
    """`name` if it is a valid scope name or secret key (`kind` names which), else a 400."""
    if not name or len(name) > MAX_NAME_LENGTH or not _NAME.fullmatch(name):
        raise InvalidParameterValue(
            f"Invalid {kind} name {name[: MAX_NAME_LENGTH + 1]!r}: it must be 1 to "
            f"{MAX_NAME_LENGTH} characters of letters, digits, dashes, underscores, '@' "
            "and periods."
        )
    return name


async def get_scope(session: AsyncSession, name: str) -> SecretScope:
    """The scope called `name`, or a 404."""
    scope = await session.scalar(select(SecretScope).where(SecretScope.name == name))
    if scope is None:
        raise ResourceDoesNotExist(f"Scope {name} does not exist!")
    return scope


async def create_scope(
    session: AsyncSession,
    caller: Caller,
    name: str,
    *,
    initial_manage_principal: str | None = None,
    backend_type: str | None = None,
    keyvault_metadata: Mapping[str, Any] | None = None,
) -> SecretScope:
    """Create a Databricks-backed scope; MANAGE goes to the caller (or to all `users`)."""
    validate_name("scope", name)
    if backend_type not in (None, DATABRICKS_BACKEND) or keyvault_metadata is not None:
        raise InvalidParameterValue(
            f"Unsupported scope_backend_type {backend_type!r}: only DATABRICKS scopes exist here."
        )
    # As in Databricks, the only principal this option accepts is the all-users group.
    if initial_manage_principal not in (None, ALL_USERS):
        raise InvalidParameterValue(
            "initial_manage_principal must be 'users' (or omitted to grant MANAGE to the creator)."
        )
    if await session.scalar(select(SecretScope.id).where(SecretScope.name == name)) is not None:
        raise ResourceAlreadyExists(f"Scope {name} already exists!")
    scope = SecretScope(
        name=name,
        backend_type=DATABRICKS_BACKEND,
        created_by=caller.user_id,
        created_at=now_utc(),
    )
    session.add(scope)
    try:
        await session.flush()
    except IntegrityError:
        # Another request created the same scope between the check and the insert.
        raise ResourceAlreadyExists(f"Scope {name} already exists!") from None
    owner = initial_manage_principal or caller.user_name
    session.add(SecretAcl(scope_id=scope.id, principal=owner, permission=Permission.MANAGE))
    await session.flush()
    return scope


async def list_scopes(session: AsyncSession) -> list[SecretScope]:
    """Every scope of the workspace, by name (names are not secret; values are)."""
    return list((await session.scalars(select(SecretScope).order_by(SecretScope.name))).all())


async def delete_scope(session: AsyncSession, caller: Caller, name: str) -> None:
    """Delete a scope with its secrets and ACLs (needs MANAGE)."""
    scope = await get_scope(session, name)
    await require_permission(session, scope, caller, Permission.MANAGE)
    await session.delete(scope)
    await session.flush()
