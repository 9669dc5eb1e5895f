"""Kiln's notebook revisions API (/api/2.0/kiln/notebook-revisions): the editor's autosaves."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from kiln.server.deps import CurrentPrincipal, Session
from kiln.server.webui import revisions
from kiln.store.models import NotebookRevision, to_epoch_ms

router = APIRouter(prefix="/api/2.0/kiln/notebook-revisions", tags=["web"])


class SaveRevisionRequest(BaseModel):
    """A notebook's path and its cells: `[{"command": str, "outputs": [nbformat outputs]}]`."""

    model_config = ConfigDict(extra="ignore")

    path: str | None = None
    cells: Any = None


class RevisionInfo(BaseModel):
    """A revision's id, time and author (without its cells)."""

    revision_id: int
    path: str
    created_at: int
    created_by: int | None = None

    @classmethod
    def of(cls, row: NotebookRevision) -> RevisionInfo:
        """From the stored row."""
        return cls(
            revision_id=row.id,
            path=row.path,
            created_at=to_epoch_ms(row.created_at),
            created_by=row.created_by,
        )


class Revision(RevisionInfo):
    """A revision with its cells."""

    cells: list[dict[str, Any]]

    @classmethod
    def of(cls, row: NotebookRevision) -> Revision:
        """From the stored row."""
        return cls(**RevisionInfo.of(row).model_dump(), cells=list(row.cells))


@router.post("/save")
async def save(body: SaveRevisionRequest, session: Session, me: CurrentPrincipal) -> RevisionInfo:
    """Save the editor's cells, with their outputs, as the notebook's newest revision."""
    row = await revisions.save_revision(session, me, body.path, body.cells)
    return RevisionInfo.of(row)


@router.get("/list")
async def list_revisions(
    path: str, session: Session, me: CurrentPrincipal
) -> dict[str, list[RevisionInfo]]:
    """A notebook's revisions, newest first."""
    rows = await revisions.list_revisions(session, me, path)
    return {"revisions": [RevisionInfo.of(r) for r in rows]}


@router.get("/get", response_model=None)
async def get(
    path: str, session: Session, me: CurrentPrincipal, revision_id: int | None = None
) -> Revision | dict[str, Any]:
    """One revision with its cells (the newest without `revision_id`; `{}` when none)."""
    row = await revisions.get_revision(session, me, path, revision_id)
    return Revision.of(row) if row is not None else {}
