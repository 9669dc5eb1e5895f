"""The workspace object tree in the store: lookups, folders, writes, deletes and who may do what.

Invariants: every path here is already clean (see `resolve_path`); a row's parent is a
DIRECTORY row or the virtual root `/` (object id 0, never stored); `/`, `/Users` and `/Shared`
cannot be deleted. Access: admins act anywhere; other users read everything except other users'
homes, and write only inside their own home and `/Shared`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import delete as sql_delete
from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import undefer
from sqlalchemy.sql import ColumnElement

from kiln.errors import (
    DirectoryNotEmpty,
    InvalidParameterValue,
    PermissionDenied,
    ResourceAlreadyExists,
    ResourceDoesNotExist,
)
from kiln.paths import normalize_absolute_path
from kiln.store.models import WorkspaceObject, now_utc
from kiln.workspace.actor import Actor, home_of
from kiln.workspace.enums import Language, ObjectType

__all__ = [
    "ROOT",
    "SYSTEM_FOLDERS",
    "NewObject",
    "can_read",
    "can_write",
    "child_objects",
    "create_tree",
    "delete_path",
    "ensure_home",
    "get_object",
    "make_dirs",
    "parent_of",
    "put_object",
    "resolve_path",
    "subtree",
]

ROOT = "/"
USERS = "/Users"
SHARED = "/Shared"
SYSTEM_FOLDERS = frozenset({ROOT, USERS, SHARED})
# Databricks accepts `/Workspace/...` as another spelling of a workspace path.
_WORKSPACE_ALIAS = "/Workspace"


@dataclass(frozen=True, slots=True)
class NewObject:
    """A notebook, file or folder about to be written (content: SOURCE text or file bytes)."""

    path: str
    object_type: ObjectType
    language: Language | None = None
    content: bytes | None = None


def resolve_path(raw: str, *, what: str = "path") -> str:
    """A client's workspace path, normalized and confined (the `/Workspace` prefix dropped)."""
    path = normalize_absolute_path(raw, what=what)
    if path == _WORKSPACE_ALIAS or path.startswith(_WORKSPACE_ALIAS + "/"):
        path = path[len(_WORKSPACE_ALIAS) :] or ROOT
    return path


def parent_of(path: str) -> str:
    """The folder that holds `path` (`/` for top-level objects)."""
    return path.rsplit("/", 1)[0] or ROOT


def _within(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def _home_owner(path: str) -> str | None:
    parts = path.split("/")
    return parts[2] if len(parts) >= 3 and parts[1] == "Users" else None


def can_read(actor: Actor, path: str) -> bool:
    """Whether the actor may see `path` (everyone sees all but other users' homes)."""
    owner = _home_owner(path)
    return actor.is_admin or owner is None or owner.lower() == actor.user_name.lower()


def can_write(actor: Actor, path: str) -> bool:
    """Whether the actor may create, change or delete the object at `path`."""
    if actor.is_admin:
        return path not in SYSTEM_FOLDERS
    return any(path != top and _within(path, top) for top in (home_of(actor), SHARED))


def _check_read(actor: Actor, path: str) -> None:
    if not can_read(actor, path):
        raise PermissionDenied(f"User {actor.user_name} does not have READ permission on {path}")


def _check_write(actor: Actor, path: str) -> None:
    if path in SYSTEM_FOLDERS:
        raise PermissionDenied(
            f"Folder {path} is protected and cannot be changed.", error_code="DIRECTORY_PROTECTED"
        )
    if not can_write(actor, path):
        raise PermissionDenied(f"User {actor.user_name} does not have MANAGE permission on {path}")


def _root() -> WorkspaceObject:
    # Never added to a session: `/` exists implicitly, with Databricks' object id 0.
    epoch = datetime.fromtimestamp(0, UTC)
    return WorkspaceObject(
        id=0,
        path=ROOT,
        parent_path="",
        object_type=ObjectType.DIRECTORY.value,
        size=0,
        created_at=epoch,
        modified_at=epoch,
    )


async def _find(session: AsyncSession, path: str) -> WorkspaceObject | None:
    if path == ROOT:
        return _root()
    return await session.scalar(select(WorkspaceObject).where(WorkspaceObject.path == path))


async def _insert_folder(session: AsyncSession, path: str, owner_id: int | None) -> None:
    """Create a folder unless a concurrent request just did (the savepoint absorbs the race)."""
    now = now_utc()
    row = WorkspaceObject(
        path=path,
        parent_path=parent_of(path),
        object_type=ObjectType.DIRECTORY.value,
        size=0,
        owner_id=owner_id,
        created_at=now,
        modified_at=now,
    )
    try:
        async with session.begin_nested():
            session.add(row)
    except IntegrityError:
        existing = await _find(session, path)
        if existing is None or existing.object_type != ObjectType.DIRECTORY:
            raise ResourceAlreadyExists(f"Path ({path}) already exists.") from None


# Homes seen to exist, per database: every workspace call ensures the caller's home, and once
# it is known to exist that check costs no query (it was half the queries of a get-status).
# Deleting a home or a folder above one forgets them all (delete_path).
_homes_seen: set[tuple[str, int]] = set()


def _home_key(session: AsyncSession, actor: Actor) -> tuple[str, int]:
    return (str(session.get_bind().engine.url), actor.user_id)


async def ensure_home(session: AsyncSession, actor: Actor) -> None:
    """Create `/Users`, `/Shared` and the actor's home folder on first use."""
    key = _home_key(session, actor)
    if key in _homes_seen:
        return
    home = home_of(actor)
    if home.count("/") != 2 or normalize_absolute_path(home) != home:
        raise InvalidParameterValue(f"User name {actor.user_name!r} cannot name a home folder.")
    if await _find(session, home) is not None:
        # Only a home seen committed is remembered, never one this transaction inserts.
        _homes_seen.add(key)
        return
    for folder in (USERS, SHARED):
        if await _find(session, folder) is None:
            await _insert_folder(session, folder, None)
    await _insert_folder(session, home, actor.user_id)


async def load_contents(session: AsyncSession, rows: Sequence[WorkspaceObject]) -> None:
    """Load the deferred `content` of rows that are about to be read."""
    ids = [r.id for r in rows if r.object_type != ObjectType.DIRECTORY and r.id]
    for start in range(0, len(ids), 500):
        await session.execute(
            select(WorkspaceObject)
            .options(undefer(WorkspaceObject.content))
            .where(WorkspaceObject.id.in_(ids[start : start + 500]))
        )


async def get_object(session: AsyncSession, actor: Actor, path: str) -> WorkspaceObject:
    """The object at `path`, or RESOURCE_DOES_NOT_EXIST."""
    _check_read(actor, path)
    row = await _find(session, path)
    if row is None:
        raise ResourceDoesNotExist(f"Path ({path}) doesn't exist.")
    return row


async def child_objects(session: AsyncSession, actor: Actor, folder: str) -> list[WorkspaceObject]:
    """A folder's direct children the actor may see, ordered by path."""
    rows = await session.scalars(
        select(WorkspaceObject)
        .where(WorkspaceObject.parent_path == folder)
        .order_by(WorkspaceObject.path)
    )
    return [row for row in rows if can_read(actor, row.path)]


def _under(folder: str) -> ColumnElement[bool]:
    # substr, not LIKE: SQLite's LIKE ignores case, which would reach a sibling's subtree.
    prefix = folder.rstrip("/") + "/"
    return func.substr(WorkspaceObject.path, 1, len(prefix)) == prefix


async def subtree(session: AsyncSession, actor: Actor, folder: str) -> list[WorkspaceObject]:
    """Every object below `folder` the actor may see, parents before children."""
    query = select(WorkspaceObject).order_by(WorkspaceObject.path)
    if folder != ROOT:
        query = query.where(_under(folder))
    rows = await session.scalars(query)
    return [row for row in rows if can_read(actor, row.path)]


async def make_dirs(session: AsyncSession, actor: Actor, path: str) -> None:
    """`mkdir -p`: create `path` and missing parents; a non-folder on the way is a 409."""
    _check_read(actor, path)
    prefixes = [p for p in _prefixes(path) if p != ROOT]
    found = {
        row.path: row
        for row in await session.scalars(
            select(WorkspaceObject).where(WorkspaceObject.path.in_(prefixes))
        )
    }
    for prefix in prefixes:
        row = found.get(prefix)
        if row is None:
            _check_write(actor, prefix)
            await _insert_folder(session, prefix, actor.user_id)
        elif row.object_type != ObjectType.DIRECTORY:
            raise ResourceAlreadyExists(
                f"Cannot create directory {path}: {prefix} already exists and is not a directory."
            )


def _prefixes(path: str) -> list[str]:
    parts = [p for p in path.split("/") if p]
    return [ROOT] + ["/" + "/".join(parts[: i + 1]) for i in range(len(parts))]


async def _require_folder(session: AsyncSession, path: str) -> None:
    parent = parent_of(path)
    row = await _find(session, parent)
    if row is None or row.object_type != ObjectType.DIRECTORY:
        raise ResourceDoesNotExist(f"The parent folder ({parent}) does not exist.")


# A folder has children, an experiment has runs: importing over either would orphan them.
_NOT_OVERWRITTEN = (ObjectType.DIRECTORY, ObjectType.MLFLOW_EXPERIMENT)


async def put_object(
    session: AsyncSession, actor: Actor, new: NewObject, *, overwrite: bool
) -> WorkspaceObject:
    """Write a notebook or file at `new.path`; its parent folder must already exist."""
    _check_read(actor, new.path)
    _check_write(actor, new.path)
    await _require_folder(session, new.path)
    content = new.content or b""
    now = now_utc()
    row = await _find(session, new.path)
    if row is not None:
        if not overwrite or row.object_type in _NOT_OVERWRITTEN:
            raise ResourceAlreadyExists(f"Path ({new.path}) already exists.")
        row.object_type = new.object_type.value
        row.language = new.language.value if new.language else None
        row.content = content
        row.size = len(content)
        row.modified_at = now
        await session.flush()
        return row
    row = WorkspaceObject(
        path=new.path,
        parent_path=parent_of(new.path),
        object_type=new.object_type.value,
        language=new.language.value if new.language else None,
        content=content,
        size=len(content),
        owner_id=actor.user_id,
        created_at=now,
        modified_at=now,
    )
    try:
        async with session.begin_nested():
            session.add(row)
    except IntegrityError:
        raise ResourceAlreadyExists(f"Path ({new.path}) already exists.") from None
    return row


async def create_tree(
    session: AsyncSession, actor: Actor, root: str, objects: Sequence[NewObject]
) -> None:
    """Create folder `root` and `objects` below it (a DBC or zip import); `root` must be new."""
    _check_read(actor, root)
    _check_write(actor, root)
    await _require_folder(session, root)
    if await _find(session, root) is not None:
        raise ResourceAlreadyExists(f"Path ({root}) already exists.")
    folders = {root} | {
        p for o in objects for p in _prefixes(parent_of(o.path)) if _within(p, root)
    }
    for folder in sorted(folders):
        await _insert_folder(session, folder, actor.user_id)
    for new in objects:
        if new.object_type == ObjectType.DIRECTORY:
            if await _find(session, new.path) is None:
                await _insert_folder(session, new.path, actor.user_id)
        else:
            await put_object(session, actor, new, overwrite=False)


async def delete_path(session: AsyncSession, actor: Actor, path: str, *, recursive: bool) -> None:
    """Delete an object; a folder with children needs `recursive`."""
    _check_read(actor, path)
    row = await get_object(session, actor, path)
    _check_write(actor, path)
    if path in ("/", USERS) or path.startswith(USERS + "/"):
        _homes_seen.clear()
    if row.object_type == ObjectType.DIRECTORY:
        has_children = await session.scalar(
            select(WorkspaceObject.id).where(WorkspaceObject.parent_path == path).limit(1)
        )
        if has_children is not None and not recursive:
            raise DirectoryNotEmpty(f"Folder ({path}) is not empty.")
    await session.execute(
        sql_delete(WorkspaceObject)
        .where(or_(WorkspaceObject.path == path, _under(path)))
        .execution_options(synchronize_session=False)
    )
