"""SCIM v2: Me, Users and Groups under /api/2.0/preview/scim/v2 (and /api/2.0/scim/v2)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Response

from kiln.errors import ResourceDoesNotExist
from kiln.identity import groups, require_admin, users
from kiln.identity.scim_patch import apply_group_patch, apply_user_patch
from kiln.server.deps import CurrentPrincipal, Session
from kiln.server.schemas.scim import (
    PatchRequest,
    ScimGroupIn,
    ScimUserIn,
    group_resource,
    list_response,
    user_resource,
)

router = APIRouter(tags=["scim"])

# Also served under /api/2.0/scim/v2 (an alias, see kiln.server.routers.ALIASES).
PREFIX = "/api/2.0/preview/scim/v2"


async def _user_json(session: Session, user_id: int) -> dict[str, Any]:
    user = await users.get_user(session, user_id)
    return user_resource(user, await users.groups_of_user(session, user.id))


async def _group_json(session: Session, group_id: int) -> dict[str, Any]:
    group = await groups.get_group(session, group_id)
    member_users, member_groups = await groups.members_of(session, group.id)
    parents = await groups.parents_of_group(session, group.id)
    return group_resource(group, member_users, member_groups, parents)


def _parse_id(raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ResourceDoesNotExist(f"Resource {raw!r} does not exist.") from None


async def me(session: Session, principal: CurrentPrincipal) -> dict[str, Any]:
    """The calling user."""
    return await _user_json(session, principal.user_id)


async def list_users(
    session: Session,
    principal: CurrentPrincipal,
    filter: str | None = None,
    start_index: int = Query(1, alias="startIndex", ge=1),
    count: int | None = Query(None, ge=0),
    sort_by: str | None = Query(None, alias="sortBy"),
    sort_order: str | None = Query(None, alias="sortOrder", pattern="^(ascending|descending)$"),
) -> dict[str, Any]:
    """Users matching a SCIM filter, one page."""
    total, rows = await users.list_users(
        session,
        filter_text=filter,
        start_index=start_index,
        count=count,
        sort_by=sort_by,
        descending=sort_order == "descending",
    )
    resources = [user_resource(u, await users.groups_of_user(session, u.id)) for u in rows]
    return list_response(total, start_index, resources)


async def get_user(id: str, session: Session, principal: CurrentPrincipal) -> dict[str, Any]:
    """One user."""
    return await _user_json(session, _parse_id(id))


async def create_user(
    body: ScimUserIn, session: Session, principal: CurrentPrincipal, response: Response
) -> dict[str, Any]:
    """Create a user (admins only)."""
    require_admin(principal)
    user = await users.create_user(
        session,
        body.user_name,
        display_name=body.display_name,
        given_name=body.name.given_name if body.name else None,
        family_name=body.name.family_name if body.name else None,
        external_id=body.external_id,
        active=body.active,
        group_ids=[_parse_id(g.value) for g in body.groups],
    )
    response.status_code = 201
    return await _user_json(session, user.id)


async def patch_user(
    id: str, body: PatchRequest, session: Session, principal: CurrentPrincipal
) -> dict[str, Any]:
    """Patch a user's attributes or groups (admins only)."""
    require_admin(principal)
    user = await users.get_user(session, _parse_id(id))
    await apply_user_patch(session, user, [op.model_dump() for op in body.operations])
    return await _user_json(session, user.id)


async def delete_user(id: str, session: Session, principal: CurrentPrincipal) -> Response:
    """Delete a user (admins only)."""
    require_admin(principal)
    await users.delete_user(session, _parse_id(id))
    return Response(status_code=204)


async def list_groups(
    session: Session,
    principal: CurrentPrincipal,
    filter: str | None = None,
    start_index: int = Query(1, alias="startIndex", ge=1),
    count: int | None = Query(None, ge=0),
) -> dict[str, Any]:
    """Groups matching a SCIM filter, one page."""
    total, rows = await groups.list_groups(
        session, filter_text=filter, start_index=start_index, count=count
    )
    resources = [await _group_json(session, g.id) for g in rows]
    return list_response(total, start_index, resources)


async def get_group(id: str, session: Session, principal: CurrentPrincipal) -> dict[str, Any]:
    """One group with its members."""
    return await _group_json(session, _parse_id(id))


async def create_group(
    body: ScimGroupIn, session: Session, principal: CurrentPrincipal, response: Response
) -> dict[str, Any]:
    """Create a group (admins only)."""
    require_admin(principal)
    group = await groups.create_group(
        session,
        body.display_name,
        external_id=body.external_id,
        member_ids=[_parse_id(m.value) for m in body.members],
    )
    response.status_code = 201
    return await _group_json(session, group.id)


async def patch_group(
    id: str, body: PatchRequest, session: Session, principal: CurrentPrincipal
) -> dict[str, Any]:
    """Patch a group's members or name (admins only)."""
    require_admin(principal)
    group = await groups.get_group(session, _parse_id(id))
    await apply_group_patch(session, group, [op.model_dump() for op in body.operations])
    return await _group_json(session, group.id)


async def delete_group(id: str, session: Session, principal: CurrentPrincipal) -> Response:
    """Delete a group (admins only)."""
    require_admin(principal)
    await groups.delete_group(session, _parse_id(id))
    return Response(status_code=204)


router.add_api_route(f"{PREFIX}/Me", me, methods=["GET"])
for _path, _endpoint, _methods in (
    ("/Users", list_users, ["GET"]),
    ("/Users", create_user, ["POST"]),
    ("/Users/{id}", get_user, ["GET"]),
    ("/Users/{id}", patch_user, ["PATCH"]),
    ("/Users/{id}", delete_user, ["DELETE"]),
    ("/Groups", list_groups, ["GET"]),
    ("/Groups", create_group, ["POST"]),
    ("/Groups/{id}", get_group, ["GET"]),
    ("/Groups/{id}", patch_group, ["PATCH"]),
    ("/Groups/{id}", delete_group, ["DELETE"]),
):
    router.add_api_route(PREFIX + _path, _endpoint, methods=_methods)
