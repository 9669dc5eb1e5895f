"""The workspace tree: folders, notebooks and files, keyed by their absolute path."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from kiln.store.models.base import Base, now_utc

__all__ = ["WorkspaceObject"]


class WorkspaceObject(Base):
    """One node of the workspace tree. `parent_path` makes a folder's listing one index scan."""

    __tablename__ = "workspace_objects"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    path: Mapped[str] = mapped_column(String(4096), unique=True)
    parent_path: Mapped[str] = mapped_column(String(4096), index=True)
    object_type: Mapped[str] = mapped_column(String(32))  # DIRECTORY, NOTEBOOK, FILE
    language: Mapped[str | None] = mapped_column(String(16))  # PYTHON, SQL, SCALA, R
    # Notebooks hold the Databricks source format; files hold their raw bytes. Deferred: a
    # listing or get-status must not drag every notebook's body out of the store.
    content: Mapped[bytes | None] = mapped_column(
        LargeBinary, deferred=True, deferred_raiseload=True
    )
    size: Mapped[int] = mapped_column(default=0)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=now_utc)
    modified_at: Mapped[datetime] = mapped_column(default=now_utc)
