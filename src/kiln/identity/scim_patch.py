"""SCIM PATCH operations (RFC 7644 §3.5.2) on groups and users.

Accepts both forms clients send: `{"op": "add", "path": "members", "value": [...]}` and a
path-less `{"op": "add", "value": {"members": [...]}}`; `remove` takes
`members[value eq "123"]` or a value list.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from kiln.errors import InvalidParameterValue
from kiln.identity import groups as group_service
from kiln.identity import users as user_service
from kiln.store.models import Group, User

__all__ = ["apply_group_patch", "apply_user_patch"]

_MEMBER_FILTER = re.compile(r'^(members|groups)\[\s*value\s+eq\s+"?([^"\]]+)"?\s*\]$', re.I)


def _ids(value: Any, field: str) -> list[int]:
    items = value if isinstance(value, list) else [value]
    out = []
    for item in items:
        raw = item.get("value") if isinstance(item, Mapping) else item
        try:
            out.append(int(str(raw)))
        except (TypeError, ValueError) as exc:
            raise InvalidParameterValue(f"Invalid {field} value: {raw!r}") from exc
    return out


def _normalize(operations: Iterable[Mapping[str, Any]]) -> list[tuple[str, str, Any]]:
    """(op, attribute path, value) triples, path-less values expanded per attribute."""
    out: list[tuple[str, str, Any]] = []
    for operation in operations:
        op = str(operation.get("op", "")).lower()
        if op not in ("add", "remove", "replace"):
            raise InvalidParameterValue(f"Unsupported PATCH op: {operation.get('op')!r}")
        path = operation.get("path")
        value = operation.get("value")
        if path:
            match = _MEMBER_FILTER.match(str(path))
            if match:
                out.append((op, match.group(1).lower(), [{"value": match.group(2)}]))
            else:
                out.append((op, str(path), value))
        elif isinstance(value, Mapping):
            out.extend((op, str(k), v) for k, v in value.items())
        else:
            raise InvalidParameterValue("A PATCH operation needs a path or an object value")
    return out


async def apply_group_patch(
    session: AsyncSession, group: Group, operations: Iterable[Mapping[str, Any]]
) -> None:
    """Apply PATCH operations to a group (members, displayName)."""
    for op, path, value in _normalize(operations):
        key = path.lower()
        if key == "members":
            if op == "add":
                await group_service.add_members(session, group, _ids(value, "members"))
            elif op == "remove":
                await group_service.remove_members(session, group, _ids(value, "members"))
            else:
                current_users, current_groups = await group_service.members_of(session, group.id)
                current = [m.id for m in current_users] + [g.id for g in current_groups]
                await group_service.remove_members(session, group, current)
                await group_service.add_members(session, group, _ids(value or [], "members"))
        elif key == "displayname" and op in ("add", "replace"):
            await group_service.rename_group(session, group, str(value))
        elif key == "externalid" and op in ("add", "replace"):
            group.external_id = str(value)
        else:
            raise InvalidParameterValue(f"Unsupported PATCH path for a group: {path!r}")


async def apply_user_patch(
    session: AsyncSession, user: User, operations: Iterable[Mapping[str, Any]]
) -> None:
    """Apply PATCH operations to a user (active, displayName, name, groups)."""
    for op, path, value in _normalize(operations):
        key = path.lower()
        if key == "active" and op in ("add", "replace"):
            if not isinstance(value, bool):
                raise InvalidParameterValue("active must be a boolean")
            await user_service.update_user(session, user, active=value)
        elif key == "displayname" and op in ("add", "replace"):
            await user_service.update_user(session, user, display_name=str(value))
        elif key == "name.givenname" and op in ("add", "replace"):
            await user_service.update_user(session, user, given_name=str(value))
        elif key == "name.familyname" and op in ("add", "replace"):
            await user_service.update_user(session, user, family_name=str(value))
        elif key == "groups":
            for gid in _ids(value, "groups"):
                group = await group_service.get_group(session, gid)
                if op == "remove":
                    await group_service.remove_members(session, group, [user.id])
                else:
                    await group_service.add_members(session, group, [user.id])
        else:
            raise InvalidParameterValue(f"Unsupported PATCH path for a user: {path!r}")
