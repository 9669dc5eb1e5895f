"""Groups and their membership (the SCIM Groups resource's domain side)."""

from __future__ import annotations

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from kiln.errors import InvalidParameterValue, ResourceAlreadyExists, ResourceDoesNotExist
from kiln.identity.scim_filter import compile_filter
from kiln.store.models import Group, GroupMember, User, now_utc

__all__ = [
    "add_members",
    "create_group",
    "delete_group",
    "get_group",
    "list_groups",
    "members_of",
    "parents_of_group",
    "remove_members",
    "rename_group",
]

GROUP_FILTER_COLUMNS = {
    "id": Group.id,
    "displayName": Group.display_name,
    "externalId": Group.external_id,
}


async def get_group(session: AsyncSession, group_id: int) -> Group:
    """A group by id, or 404."""
    group = await session.get(Group, group_id)
    if group is None:
        raise ResourceDoesNotExist(f"Group {group_id} does not exist.")
    return group


async def create_group(
    session: AsyncSession,
    display_name: str,
    *,
    external_id: str | None = None,
    member_ids: list[int] | None = None,
) -> Group:
    """Create a group, with optional initial members (user or group ids)."""
    display_name = display_name.strip()
    if not display_name:
        raise InvalidParameterValue("displayName is required")
    if await session.scalar(select(Group).where(Group.display_name == display_name)):
        raise ResourceAlreadyExists(f"Group with name {display_name} already exists.")
    group = Group(display_name=display_name, external_id=external_id, created_at=now_utc())
    session.add(group)
    await session.flush()
    if member_ids:
        await add_members(session, group, member_ids)
    return group


async def rename_group(session: AsyncSession, group: Group, display_name: str) -> Group:
    """Change a group's displayName."""
    if not display_name.strip():
        raise InvalidParameterValue("displayName must not be empty")
    clash = await session.scalar(
        select(Group).where(Group.display_name == display_name, Group.id != group.id)
    )
    if clash is not None:
        raise ResourceAlreadyExists(f"Group with name {display_name} already exists.")
    group.display_name = display_name
    await session.flush()
    return group


async def list_groups(
    session: AsyncSession,
    *,
    filter_text: str | None = None,
    start_index: int = 1,
    count: int | None = None,
) -> tuple[int, list[Group]]:
    """(total matching, one page) of groups under a SCIM filter; startIndex is 1-based."""
    where = compile_filter(filter_text, GROUP_FILTER_COLUMNS)
    base = select(Group)
    if where is not None:
        base = base.where(where)
    total = await session.scalar(select(func.count()).select_from(base.subquery())) or 0
    query = base.order_by(Group.id).offset(max(start_index, 1) - 1)
    if count is not None:
        query = query.limit(max(count, 0))
    return total, list((await session.scalars(query)).all())


async def delete_group(session: AsyncSession, group_id: int) -> None:
    """Delete a group; its memberships go with it."""
    await session.delete(await get_group(session, group_id))
    await session.flush()


async def members_of(session: AsyncSession, group_id: int) -> tuple[list[User], list[Group]]:
    """The direct members of a group: (users, groups)."""
    users = await session.scalars(
        select(User)
        .join(GroupMember, GroupMember.member_user_id == User.id)
        .where(GroupMember.group_id == group_id)
        .order_by(User.id)
    )
    groups = await session.scalars(
        select(Group)
        .join(GroupMember, GroupMember.member_group_id == Group.id)
        .where(GroupMember.group_id == group_id)
        .order_by(Group.id)
    )
    return list(users.all()), list(groups.all())


async def parents_of_group(session: AsyncSession, group_id: int) -> list[Group]:
    """The groups that directly contain this group."""
    result = await session.scalars(
        select(Group)
        .join(GroupMember, GroupMember.group_id == Group.id)
        .where(GroupMember.member_group_id == group_id)
        .order_by(Group.id)
    )
    return list(result.all())


async def add_members(session: AsyncSession, group: Group, member_ids: list[int]) -> None:
    """Add users or groups (by id) to `group`; ids already in it are left alone."""
    for member_id in member_ids:
        user_member = await session.get(User, member_id)
        group_member = None if user_member else await session.get(Group, member_id)
        if user_member is None and group_member is None:
            raise ResourceDoesNotExist(f"Member {member_id} is neither a user nor a group.")
        if group_member is not None and group_member.id == group.id:
            raise InvalidParameterValue("A group cannot be a member of itself.")
        if user_member is not None:
            same = GroupMember.member_user_id == user_member.id
        else:
            assert group_member is not None
            same = GroupMember.member_group_id == group_member.id
        existing = await session.scalar(
            select(GroupMember).where(GroupMember.group_id == group.id, same)
        )
        if existing is None:
            session.add(
                GroupMember(
                    group_id=group.id,
                    member_user_id=user_member.id if user_member else None,
                    member_group_id=group_member.id if group_member else None,
                )
            )
    await session.flush()


async def remove_members(session: AsyncSession, group: Group, member_ids: list[int]) -> None:
    """Remove users or groups (by id) from `group`."""
    for member_id in member_ids:
        await session.execute(
            delete(GroupMember).where(
                GroupMember.group_id == group.id,
                (GroupMember.member_user_id == member_id)
                | (GroupMember.member_group_id == member_id),
            )
        )
    await session.flush()
