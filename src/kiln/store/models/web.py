"""The web workspace's notebook revisions: each autosave's cells with their outputs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from kiln.store.models.base import Base, now_utc

__all__ = ["NotebookRevision"]


class NotebookRevision(Base):
    """One saved state of a notebook: its cells (command, outputs) as the editor held them.

    Keyed by the notebook's workspace object id: the SOURCE format the workspace keeps has no
    outputs, so the editor's reload reads the newest revision for them.
    """

    __tablename__ = "web_notebook_revisions"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    object_id: Mapped[int] = mapped_column(
        ForeignKey("workspace_objects.id", ondelete="CASCADE"), index=True
    )
    path: Mapped[str] = mapped_column(String(4096))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=now_utc)
    cells: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
