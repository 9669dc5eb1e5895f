"""Users of the workspace (the SCIM Users resource's domain side)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from kiln.errors import InvalidParameterValue, ResourceAlreadyExists, ResourceDoesNotExist
from kiln.identity.principal import USERS_GROUP
from kiln.identity.scim_filter import compile_filter
from kiln.store.models import Group, GroupMember, User, now_utc

__all__ = [
    "create_user",
    "delete_user",
    "ensure_group",
    "get_user",
    "get_user_by_name",
    "groups_of_user",
    "list_users",
    "update_user",
]

USER_FILTER_COLUMNS = {
    "id": User.id,
    "userName": User.user_name,
    "displayName": User.display_name,
    "active": User.active,
    "externalId": User.external_id,
    "emails.value": User.user_name,
    "emails": User.user_name,
    "name.givenName": User.given_name,
    "name.familyName": User.family_name,
}


async def get_user(session: AsyncSession, user_id: int) -> User:
    """A user by id, or 404."""
    user = await session.get(User, user_id)
    if user is None:
        raise ResourceDoesNotExist(f"User {user_id} does not exist.")
    return user


async def get_user_by_name(session: AsyncSession, user_name: str) -> User | None:
    """A user by userName (case-insensitive, as Databricks matches e-mail addresses)."""
    return await session.scalar(select(User).where(func.lower(User.user_name) == user_name.lower()))


async def ensure_group(session: AsyncSession, name: str) -> Group:
    """The group called `name`, created if missing (the built-in admins and users)."""
    group = await session.scalar(select(Group).where(Group.display_name == name))
    if group is None:
        group = Group(display_name=name, created_at=now_utc())
        session.add(group)
        await session.flush()
    return group


async def create_user(
    session: AsyncSession,
    user_name: str,
    *,
    display_name: str | None = None,
    given_name: str | None = None,
    family_name: str | None = None,
    external_id: str | None = None,
    active: bool = True,
    group_ids: list[int] | None = None,
) -> User:
    """Create a user and put it in the `users` group (and any `group_ids`)."""
    user_name = user_name.strip()
    if not user_name:
        raise InvalidParameterValue("userName is required")
    if await get_user_by_name(session, user_name) is not None:
        raise ResourceAlreadyExists(f"User with username {user_name} already exists.")
    user = User(
        user_name=user_name,
        display_name=display_name or user_name,
        given_name=given_name,
        family_name=family_name,
        external_id=external_id,
        active=active,
        created_at=now_utc(),
    )
    session.add(user)
    await session.flush()
    users_group = await ensure_group(session, USERS_GROUP)
    for gid in {users_group.id, *(group_ids or [])}:
        if await session.get(Group, gid) is None:
            raise ResourceDoesNotExist(f"Group {gid} does not exist.")
        session.add(GroupMember(group_id=gid, member_user_id=user.id))
    await session.flush()
    return user


async def list_users(
    session: AsyncSession,
    *,
    filter_text: str | None = None,
    start_index: int = 1,
    count: int | None = None,
    sort_by: str | None = None,
    descending: bool = False,
) -> tuple[int, list[User]]:
    """(total matching, one page) of users under a SCIM filter; startIndex is 1-based."""
    where = compile_filter(filter_text, USER_FILTER_COLUMNS)
    base = select(User)
    if where is not None:
        base = base.where(where)
    total = await session.scalar(select(func.count()).select_from(base.subquery())) or 0
    order = USER_FILTER_COLUMNS.get(sort_by or "id", User.id)
    query = base.order_by(order.desc() if descending else order.asc(), User.id)
    query = query.offset(max(start_index, 1) - 1)
    if count is not None:
        query = query.limit(max(count, 0))
    return total, list((await session.scalars(query)).all())


async def update_user(
    session: AsyncSession,
    user: User,
    *,
    display_name: str | None = None,
    given_name: str | None = None,
    family_name: str | None = None,
    active: bool | None = None,
    external_id: str | None = None,
) -> User:
    """Change a user's attributes (the ones not given stay as they are)."""
    if display_name is not None:
        user.display_name = display_name
    if given_name is not None:
        user.given_name = given_name
    if family_name is not None:
        user.family_name = family_name
    if active is not None:
        user.active = active
    if external_id is not None:
        user.external_id = external_id
    await session.flush()
    return user


async def delete_user(session: AsyncSession, user_id: int) -> None:
    """Delete a user; its tokens and memberships go with it."""
    await session.delete(await get_user(session, user_id))
    await session.flush()


async def groups_of_user(session: AsyncSession, user_id: int) -> list[Group]:
    """The groups a user is a direct member of."""
    query = (
        select(Group)
        .join(GroupMember, GroupMember.group_id == Group.id)
        .where(GroupMember.member_user_id == user_id)
        .order_by(Group.id)
    )
    return list((await session.scalars(query)).all())
