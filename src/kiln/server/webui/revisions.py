"""Notebook revisions: the editor's autosaves, each the cells with their outputs.

The workspace keeps a notebook's SOURCE (no outputs); a revision keeps what the editor showed,
so a reload brings the outputs back and older states can be looked at. Access follows the
workspace's: reading a notebook's revisions needs read access to it, saving one needs write
access. Only the newest `KEEP` revisions of a notebook are kept.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from kiln.errors import (
    InvalidParameterValue,
    PermissionDenied,
    RequestTooLarge,
    ResourceDoesNotExist,
)
from kiln.store.models import NotebookRevision, WorkspaceObject
from kiln.workspace import Actor, ObjectType, get_status
from kiln.workspace.tree import can_write

__all__ = ["KEEP", "MAX_CELLS_BYTES", "get_revision", "list_revisions", "save_revision"]

KEEP = 50
# A revision holds outputs (images): as much as a command's rich output may be.
MAX_CELLS_BYTES = 20 * 1024 * 1024


async def _notebook(session: AsyncSession, actor: Actor, path: object) -> WorkspaceObject:
    if not isinstance(path, str) or not path:
        raise InvalidParameterValue("path is required.")
    row = await get_status(session, actor, path)
    if row.object_type != ObjectType.NOTEBOOK:
        raise InvalidParameterValue(f"{row.path} is not a notebook.")
    return row


def _valid_cells(cells: object) -> list[dict[str, Any]]:
    if not isinstance(cells, list):
        raise InvalidParameterValue("cells must be a list.")
    out: list[dict[str, Any]] = []
    for i, cell in enumerate(cells):
        if not isinstance(cell, dict) or not isinstance(cell.get("command"), str):
            raise InvalidParameterValue(f"cells[{i}] must be an object with a string command.")
        outputs = cell.get("outputs", [])
        if not isinstance(outputs, list) or not all(isinstance(o, dict) for o in outputs):
            raise InvalidParameterValue(f"cells[{i}].outputs must be a list of objects.")
        out.append({"command": cell["command"], "outputs": outputs})
    size = len(json.dumps(out, separators=(",", ":")))
    if size > MAX_CELLS_BYTES:
        raise RequestTooLarge(
            f"The revision is {size} bytes; a revision may be at most {MAX_CELLS_BYTES} bytes."
        )
    return out


async def save_revision(
    session: AsyncSession, actor: Actor, path: object, cells: object
) -> NotebookRevision:
    """Save the editor's cells (with outputs) as the notebook's newest revision."""
    valid = _valid_cells(cells)
    row = await _notebook(session, actor, path)
    if not can_write(actor, row.path):
        raise PermissionDenied(
            f"User {actor.user_name} does not have EDIT permission on {row.path}"
        )
    revision = NotebookRevision(
        object_id=row.id, path=row.path, created_by=actor.user_id, cells=valid
    )
    session.add(revision)
    await session.flush()
    old = (
        select(NotebookRevision.id)
        .where(NotebookRevision.object_id == row.id)
        .order_by(NotebookRevision.id.desc())
        .offset(KEEP)
    )
    stale = list((await session.scalars(old)).all())
    if stale:
        await session.execute(delete(NotebookRevision).where(NotebookRevision.id.in_(stale)))
    return revision


async def list_revisions(
    session: AsyncSession, actor: Actor, path: object
) -> list[NotebookRevision]:
    """A notebook's revisions, newest first."""
    row = await _notebook(session, actor, path)
    query = (
        select(NotebookRevision)
        .where(NotebookRevision.object_id == row.id)
        .order_by(NotebookRevision.id.desc())
    )
    return list((await session.scalars(query)).all())


async def get_revision(
    session: AsyncSession, actor: Actor, path: object, revision_id: int | None = None
) -> NotebookRevision | None:
    """One revision of a notebook (the newest without an id; None when it has none)."""
    row = await _notebook(session, actor, path)
    query = select(NotebookRevision).where(NotebookRevision.object_id == row.id)
    if revision_id is None:
        return (await session.scalars(query.order_by(NotebookRevision.id.desc()).limit(1))).first()
    found = (await session.scalars(query.where(NotebookRevision.id == revision_id))).first()
    if found is None:
        raise ResourceDoesNotExist(f"Revision {revision_id} of {row.path} does not exist.")
    return found
