"""Who may do what on a secret scope: READ < WRITE < MANAGE, granted to users or groups.

A caller holds the strongest permission granted to its user name or to any group it belongs to,
directly or through nested groups; workspace admins hold MANAGE on every scope.
"""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from kiln.errors import InvalidParameterValue, PermissionDenied
from kiln.principal import Principal
from kiln.store.models import Group, GroupMember, SecretAcl, SecretScope

__all__ = [
    "ALL_USERS",
    "Caller",
    "Permission",
    "caller_principals",
    "effective_permission",
    "parse_permission",
    "require_permission",
]

# The built-in group every user belongs to (kiln.identity's USERS_GROUP; sibling packages
# stay independent, so the name is repeated rather than imported).
ALL_USERS = "users"


class Permission(StrEnum):
    """A secret ACL's permission level, Databricks' `AclPermission`."""

    READ = "READ"
    WRITE = "WRITE"
    MANAGE = "MANAGE"

    @property
    def rank(self) -> int:
        """Order of strength: each level includes the ones below it."""
        return _RANK[self]

    def covers(self, needed: Permission) -> bool:
        """Whether holding this level allows an action that needs `needed`."""
        return self.rank >= needed.rank


_RANK = {Permission.READ: 1, Permission.WRITE: 2, Permission.MANAGE: 3}


# The request's Principal, as the secrets service calls it.
Caller = Principal


def parse_permission(raw: str) -> Permission:
    """The permission named `raw` (exactly READ, WRITE or MANAGE), or a 400."""
    try:
        return Permission(raw)
    except ValueError:
        raise InvalidParameterValue(
            f"Invalid permission {raw!r}: must be one of READ, WRITE, MANAGE."
        ) from None


async def caller_principals(session: AsyncSession, caller: Caller) -> set[str]:
    """The user's name and the names of every group that contains it, however deeply."""
    group_ids: set[int] = set()
    frontier = set(
        (
            await session.scalars(
                select(GroupMember.group_id).where(GroupMember.member_user_id == caller.user_id)
            )
        ).all()
    )
    # Breadth-first up the membership graph; `group_ids` stops cycles.
    while frontier:
        group_ids |= frontier
        parents = await session.scalars(
            select(GroupMember.group_id).where(GroupMember.member_group_id.in_(frontier))
        )
        frontier = set(parents.all()) - group_ids
    names = {caller.user_name, ALL_USERS}
    if group_ids:
        names.update(
            (await session.scalars(select(Group.display_name).where(Group.id.in_(group_ids)))).all()
        )
    return names


async def effective_permission(
    session: AsyncSession, scope: SecretScope, caller: Caller
) -> Permission | None:
    """The strongest permission the caller holds on `scope`, or None."""
    if caller.is_admin:
        return Permission.MANAGE
    names = await caller_principals(session, caller)
    granted = await session.scalars(
        select(SecretAcl.permission).where(
            SecretAcl.scope_id == scope.id, SecretAcl.principal.in_(names)
        )
    )
    levels = [Permission(p) for p in granted.all()]
    return max(levels, key=lambda p: p.rank, default=None)


async def require_permission(
    session: AsyncSession, scope: SecretScope, caller: Caller, needed: Permission
) -> None:
    """Raise 403 unless the caller holds at least `needed` on `scope`."""
    held = await effective_permission(session, scope, caller)
    if held is None or not held.covers(needed):
        raise PermissionDenied(
            f"User {caller.user_name} does not have {needed.value} permission on scope "
            f"{scope.name}."
        )
