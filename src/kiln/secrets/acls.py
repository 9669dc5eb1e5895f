"""A scope's ACL: one permission per principal (a user name or a group name); needs MANAGE."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from kiln.errors import InvalidParameterValue, ResourceDoesNotExist
from kiln.secrets.permissions import Caller, Permission, parse_permission, require_permission
from kiln.secrets.scopes import get_scope
from kiln.store.models import Group, SecretAcl, SecretScope, User

__all__ = ["delete_acl", "get_acl", "list_acls", "put_acl", "resolve_principal"]


async def resolve_principal(session: AsyncSession, name: str) -> str | None:
    """The stored spelling of a group or user called `name`, or None if there is none."""
    group = await session.scalar(select(Group.display_name).where(Group.display_name == name))
    if group is not None:
        return group
    # User names are e-mail addresses, matched case-insensitively as Databricks does.
    return await session.scalar(
        select(User.user_name).where(func.lower(User.user_name) == name.lower())
    )


async def _managed_scope(session: AsyncSession, caller: Caller, scope_name: str) -> SecretScope:
    scope = await get_scope(session, scope_name)
    await require_permission(session, scope, caller, Permission.MANAGE)
    return scope


async def _find(session: AsyncSession, scope: SecretScope, principal: str) -> SecretAcl:
    name = await resolve_principal(session, principal) or principal
    row = await session.scalar(
        select(SecretAcl).where(SecretAcl.scope_id == scope.id, SecretAcl.principal == name)
    )
    if row is None:
        raise ResourceDoesNotExist(f"No ACL for principal {principal} on scope {scope.name}!")
    return row


async def put_acl(
    session: AsyncSession,
    caller: Caller,
    scope_name: str,
    principal: str,
    permission: str,
) -> SecretAcl:
    """Grant `permission` (READ, WRITE or MANAGE) to `principal`, replacing what it had."""
    level = parse_permission(permission)
    scope = await _managed_scope(session, caller, scope_name)
    name = await resolve_principal(session, principal) if principal else None
    if name is None:
        raise InvalidParameterValue(f"Principal {principal!r} is neither a user nor a group.")
    row = await session.scalar(
        select(SecretAcl).where(SecretAcl.scope_id == scope.id, SecretAcl.principal == name)
    )
    if row is None:
        row = SecretAcl(scope_id=scope.id, principal=name, permission=level)
        session.add(row)
    else:
        row.permission = level
    await session.flush()
    return row


async def get_acl(
    session: AsyncSession, caller: Caller, scope_name: str, principal: str
) -> SecretAcl:
    """The permission one principal holds on a scope."""
    scope = await _managed_scope(session, caller, scope_name)
    return await _find(session, scope, principal)


async def list_acls(session: AsyncSession, caller: Caller, scope_name: str) -> list[SecretAcl]:
    """Every ACL of a scope, by principal."""
    scope = await _managed_scope(session, caller, scope_name)
    rows = await session.scalars(
        select(SecretAcl).where(SecretAcl.scope_id == scope.id).order_by(SecretAcl.principal)
    )
    return list(rows.all())


async def delete_acl(
    session: AsyncSession, caller: Caller, scope_name: str, principal: str
) -> None:
    """Remove a principal's ACL from a scope."""
    scope = await _managed_scope(session, caller, scope_name)
    await session.delete(await _find(session, scope, principal))
    await session.flush()
