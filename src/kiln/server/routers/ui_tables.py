"""Kiln's table pages API (/api/2.0/kiln/tables): a Delta table's history and row previews."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from kiln.catalog import Storage
from kiln.server.deps import CurrentPrincipal, Session, State
from kiln.server.webui import tables

router = APIRouter(prefix="/api/2.0/kiln/tables", tags=["web"])


@router.get("/history")
async def history(
    full_name: str, session: Session, state: State, me: CurrentPrincipal
) -> dict[str, list[dict[str, Any]]]:
    """The table's Delta commits, newest first."""
    storage = Storage(state.settings.dbfs_root_url)
    return {"history": await tables.table_history(session, storage, full_name)}


@router.get("/preview")
async def preview(
    full_name: str,
    session: Session,
    state: State,
    me: CurrentPrincipal,
    version: int | None = None,
    limit: int = 100,
) -> dict[str, Any]:
    """The table's first rows (at `version`, or the latest), with their schema."""
    storage = Storage(state.settings.dbfs_root_url)
    return await tables.table_preview(session, storage, full_name, version, limit)
