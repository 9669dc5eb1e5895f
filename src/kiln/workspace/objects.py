"""`get-status`, `list`, `mkdirs` and `delete`: what the routes call, raw client paths in.

Each operation first creates the caller's home folder (and `/Users`, `/Shared`) if this is
their first workspace call, as Databricks does when a user first opens the workspace.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from kiln.store.models import WorkspaceObject, to_epoch_ms
from kiln.workspace import tree
from kiln.workspace.actor import Actor
from kiln.workspace.enums import ObjectType

__all__ = ["delete", "get_status", "list_objects", "mkdirs"]


async def get_status(session: AsyncSession, actor: Actor, raw_path: str) -> WorkspaceObject:
    """The object at a path."""
    path = tree.resolve_path(raw_path)
    await tree.ensure_home(session, actor)
    return await tree.get_object(session, actor, path)


async def list_objects(
    session: AsyncSession,
    actor: Actor,
    raw_path: str,
    *,
    notebooks_modified_after: int | None = None,
) -> list[WorkspaceObject]:
    """A folder's children, or the object itself when it is not a folder."""
    path = tree.resolve_path(raw_path)
    await tree.ensure_home(session, actor)
    row = await tree.get_object(session, actor, path)
    if row.object_type != ObjectType.DIRECTORY:
        return [row]
    children = await tree.child_objects(session, actor, path)
    if notebooks_modified_after is None:
        return children
    return [
        child
        for child in children
        if child.object_type != ObjectType.NOTEBOOK
        or to_epoch_ms(child.modified_at) > notebooks_modified_after
    ]


async def mkdirs(session: AsyncSession, actor: Actor, raw_path: str) -> None:
    """Create a folder and its missing parents (a no-op when it exists)."""
    path = tree.resolve_path(raw_path)
    await tree.ensure_home(session, actor)
    await tree.make_dirs(session, actor, path)


async def delete(
    session: AsyncSession, actor: Actor, raw_path: str, *, recursive: bool = False
) -> None:
    """Delete an object; a non-empty folder only with `recursive`."""
    path = tree.resolve_path(raw_path)
    await tree.ensure_home(session, actor)
    await tree.delete_path(session, actor, path, recursive=recursive)
