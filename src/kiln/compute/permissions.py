"""Cluster permissions: who may attach to, restart or manage a cluster
(`/api/2.0/permissions/clusters/{cluster_id}`).

Levels are ordered: CAN_ATTACH_TO < CAN_RESTART < CAN_MANAGE. Admins and the cluster's owner
hold CAN_MANAGE without a grant (Databricks reports the admins' as inherited from
`/clusters/`); so does a dedicated cluster's `single_user_name`. Other users get the highest
level granted to them or to a group they are in. Without any, a cluster operation is a 403
PERMISSION_DENIED. Reading a cluster (get, list, events, library statuses) needs no grant.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from kiln.errors import InvalidParameterValue, PermissionDenied, ResourceDoesNotExist
from kiln.identity import ADMINS_GROUP, Principal
from kiln.identity.users import get_user_by_name, groups_of_user
from kiln.store.models import Cluster, Group, User
from kiln.store.models.compute import ClusterPermission

__all__ = [
    "PermissionLevel",
    "change_permissions",
    "cluster_permissions",
    "effective_level",
    "get_permission_levels",
    "get_permissions",
    "parse_acl",
    "permission_levels",
    "require_level",
    "set_permissions",
]


class PermissionLevel(StrEnum):
    """`ClusterPermissionLevel`, in rising order of what it allows."""

    CAN_ATTACH_TO = "CAN_ATTACH_TO"
    CAN_RESTART = "CAN_RESTART"
    CAN_MANAGE = "CAN_MANAGE"

    @property
    def rank(self) -> int:
        """Its position: a higher level includes every lower one."""
        return _ORDER.index(self)


_ORDER = (PermissionLevel.CAN_ATTACH_TO, PermissionLevel.CAN_RESTART, PermissionLevel.CAN_MANAGE)
_DESCRIPTIONS = {
    PermissionLevel.CAN_ATTACH_TO: "Can attach notebooks and view the Spark UI and logs",
    PermissionLevel.CAN_RESTART: "Can attach, start, restart and terminate the cluster",
    PermissionLevel.CAN_MANAGE: "Can edit, resize, delete, install libraries and set permissions",
}
_WHAT = {
    PermissionLevel.CAN_ATTACH_TO: "Attach",
    PermissionLevel.CAN_RESTART: "Restart",
    PermissionLevel.CAN_MANAGE: "Manage",
}
# The ACL entry fields that name a principal.
_KINDS = ("user_name", "group_name", "service_principal_name")


def _owned(principal: Principal, row: Cluster) -> bool:
    if principal.is_admin or (row.owner_id is not None and row.owner_id == principal.user_id):
        return True
    single_user = row.spec.get("single_user_name")
    return isinstance(single_user, str) and single_user.lower() == principal.user_name.lower()


async def effective_level(
    session: AsyncSession, principal: Principal, row: Cluster
) -> PermissionLevel | None:
    """The highest level the principal holds on the cluster (None: no permission)."""
    if _owned(principal, row):
        return PermissionLevel.CAN_MANAGE
    grants = (
        await session.scalars(
            select(ClusterPermission).where(ClusterPermission.cluster_id == row.cluster_id)
        )
    ).all()
    if not grants:
        return None
    groups: set[str] | None = None
    best: PermissionLevel | None = None
    for grant in grants:
        if grant.principal_type == "user_name":
            held = grant.principal.lower() == principal.user_name.lower()
        elif grant.principal_type == "group_name":
            if groups is None:
                found = await groups_of_user(session, principal.user_id)
                groups = {g.display_name for g in found}
            held = grant.principal in groups
        else:
            held = False
        level = PermissionLevel(grant.permission_level)
        if held and (best is None or level.rank > best.rank):
            best = level
    return best


async def require_level(
    session: AsyncSession, principal: Principal, row: Cluster, level: PermissionLevel
) -> None:
    """Raise 403 PERMISSION_DENIED unless the principal holds `level` (or more) on the cluster."""
    held = await effective_level(session, principal, row)
    if held is None or held.rank < level.rank:
        raise PermissionDenied(
            f"User {principal.user_name} does not have {_WHAT[level]} permission on cluster "
            f"{row.cluster_id}."
        )


def permission_levels() -> list[dict[str, str]]:
    """`GetClusterPermissionLevelsResponse.permission_levels`."""
    return [{"permission_level": lv.value, "description": _DESCRIPTIONS[lv]} for lv in _ORDER]


def parse_acl(raw: object) -> list[tuple[str, str, PermissionLevel]]:
    """An `access_control_list` as (principal kind, name, level); a 400 naming the entry."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise InvalidParameterValue("access_control_list must be a list.")
    out: list[tuple[str, str, PermissionLevel]] = []
    for i, entry in enumerate(raw):
        what = f"access_control_list[{i}]"
        if not isinstance(entry, dict):
            raise InvalidParameterValue(f"{what} must be an object.")
        named = [k for k in _KINDS if entry.get(k) is not None]
        if len(named) != 1:
            raise InvalidParameterValue(
                f"{what} must name exactly one of user_name, group_name, service_principal_name."
            )
        kind = named[0]
        name = entry[kind]
        if not isinstance(name, str) or not name.strip() or len(name) > 255:
            raise InvalidParameterValue(f"{what}.{kind} must be a non-empty string.")
        level = entry.get("permission_level")
        if level not in {lv.value for lv in PermissionLevel}:
            raise InvalidParameterValue(
                f"{what}.permission_level: {level!r} is not one of "
                f"{', '.join(lv.value for lv in _ORDER)}."
            )
        out.append((kind, name.strip(), PermissionLevel(level)))
    return out


async def _check_principals(
    session: AsyncSession, entries: list[tuple[str, str, PermissionLevel]]
) -> None:
    for i, (kind, name, _) in enumerate(entries):
        what = f"access_control_list[{i}].{kind}"
        if kind == "user_name":
            if await get_user_by_name(session, name) is None:
                raise InvalidParameterValue(f"{what}: User {name} does not exist.")
        elif kind == "group_name":
            found = await session.scalar(select(Group.id).where(Group.display_name == name))
            if found is None:
                raise InvalidParameterValue(f"{what}: Group {name} does not exist.")
        else:
            raise InvalidParameterValue(
                f"{what}: Service principal {name} does not exist (Kiln has no service principals)."
            )


async def set_permissions(
    session: AsyncSession,
    principal: Principal,
    row: Cluster,
    raw_acl: object,
    *,
    replace: bool,
) -> None:
    """Grant the entries (PATCH), or make them the cluster's whole direct ACL (PUT); needs
    CAN_MANAGE. The owner and admins keep CAN_MANAGE whatever the ACL says."""
    await require_level(session, principal, row, PermissionLevel.CAN_MANAGE)
    entries = parse_acl(raw_acl)
    await _check_principals(session, entries)
    if replace:
        await session.execute(
            delete(ClusterPermission).where(ClusterPermission.cluster_id == row.cluster_id)
        )
        await session.flush()
    existing = {
        (g.principal_type, g.principal): g
        for g in (
            await session.scalars(
                select(ClusterPermission).where(ClusterPermission.cluster_id == row.cluster_id)
            )
        ).all()
    }
    for kind, name, level in entries:
        grant = existing.get((kind, name))
        if grant is None:
            grant = ClusterPermission(
                cluster_id=row.cluster_id, principal_type=kind, principal=name
            )
            session.add(grant)
            existing[(kind, name)] = grant
        grant.permission_level = level.value
    await session.flush()


def _entry(kind: str, name: str, level: str, *, inherited: bool = False) -> dict[str, Any]:
    permission: dict[str, Any] = {"permission_level": level, "inherited": inherited}
    if inherited:
        permission["inherited_from_object"] = ["/clusters/"]
    out: dict[str, Any] = {kind: name, "all_permissions": [permission]}
    if kind == "user_name":
        out["display_name"] = name
    return out


async def cluster_permissions(session: AsyncSession, row: Cluster) -> dict[str, Any]:
    """`ClusterPermissions`: the owner, the direct grants and the admins' inherited one."""
    acl: list[dict[str, Any]] = []
    owner = await session.get(User, row.owner_id) if row.owner_id is not None else None
    if owner is not None:
        acl.append(_entry("user_name", owner.user_name, PermissionLevel.CAN_MANAGE.value))
    grants = (
        await session.scalars(
            select(ClusterPermission)
            .where(ClusterPermission.cluster_id == row.cluster_id)
            .order_by(ClusterPermission.id)
        )
    ).all()
    for grant in grants:
        if owner is not None and (grant.principal_type, grant.principal) == (
            "user_name",
            owner.user_name,
        ):
            continue
        acl.append(_entry(grant.principal_type, grant.principal, grant.permission_level))
    acl.append(_entry("group_name", ADMINS_GROUP, PermissionLevel.CAN_MANAGE.value, inherited=True))
    return {
        "object_id": f"/clusters/{row.cluster_id}",
        "object_type": "cluster",
        "access_control_list": acl,
    }


# -- the Permissions API for clusters -----------------------------------------------------------


async def _cluster(session: AsyncSession, cluster_id: str) -> Cluster:
    row = await session.get(Cluster, cluster_id, populate_existing=True)
    if row is None or row.deleted_at is not None:
        raise ResourceDoesNotExist(f"Cluster {cluster_id} does not exist.")
    return row


async def get_permissions(
    session: AsyncSession, principal: Principal, cluster_id: str
) -> dict[str, Any]:
    """A cluster's permissions, for anyone holding a permission on it."""
    row = await _cluster(session, cluster_id)
    await require_level(session, principal, row, PermissionLevel.CAN_ATTACH_TO)
    return await cluster_permissions(session, row)


async def get_permission_levels(
    session: AsyncSession, principal: Principal, cluster_id: str
) -> list[dict[str, str]]:
    """The levels a cluster's permissions can take."""
    row = await _cluster(session, cluster_id)
    await require_level(session, principal, row, PermissionLevel.CAN_ATTACH_TO)
    return permission_levels()


async def change_permissions(
    session: AsyncSession,
    principal: Principal,
    cluster_id: str,
    access_control_list: object,
    *,
    replace: bool,
) -> dict[str, Any]:
    """PUT (replace) or PATCH (add to) a cluster's direct grants; the permissions after."""
    row = await _cluster(session, cluster_id)
    await set_permissions(session, principal, row, access_control_list, replace=replace)
    return await cluster_permissions(session, row)
