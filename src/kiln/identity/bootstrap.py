"""First start: the admin user and its token, written to the data dir with mode 0600."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from kiln.identity.principal import ADMINS_GROUP, USERS_GROUP
from kiln.identity.tokens import create_token
from kiln.identity.users import create_user, ensure_group
from kiln.store.models import GroupMember, User

__all__ = ["bootstrap_admin", "write_secret_file"]


def write_secret_file(path: Path, value: str) -> None:
    """Write `value` to a file only its owner can read, never briefly world-readable."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")
    os.chmod(path, 0o600)


async def bootstrap_admin(session: AsyncSession, user_name: str, token_path: Path) -> bool:
    """Create the first admin and its token when the store has no users; True if it did."""
    await ensure_group(session, USERS_GROUP)
    admins = await ensure_group(session, ADMINS_GROUP)
    if (await session.scalar(select(func.count()).select_from(User))) or 0:
        return False
    user = await create_user(session, user_name, display_name="Kiln admin")
    session.add(GroupMember(group_id=admins.id, member_user_id=user.id))
    issued = await create_token(session, user.id, comment="kiln up: first admin token")
    await session.flush()
    write_secret_file(token_path, issued.value)
    return True
