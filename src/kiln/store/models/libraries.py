"""Libraries requested for clusters (and for all clusters) and their install statuses."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, String, Text, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from kiln.store.models.base import Base, now_utc

__all__ = ["ClusterLibrary"]


class ClusterLibrary(Base):
    """One library on one cluster, or on every cluster when `cluster_id` is None.

    `library` is the Databricks `Library` object as sent; `library_key` its canonical JSON, so
    installing the same library twice is one row. `status` takes Databricks'
    `LibraryInstallStatus` values and changes only through the libraries service.
    `for_all_clusters` marks a cluster's copy of a library an admin set for every cluster
    (`is_library_for_all_clusters`); the cluster's own install of it clears the mark.
    """

    __tablename__ = "cluster_libraries"
    __table_args__ = (UniqueConstraint("cluster_id", "library_key"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    cluster_id: Mapped[str | None] = mapped_column(
        ForeignKey("clusters.cluster_id", ondelete="CASCADE"), index=True
    )
    library: Mapped[dict[str, Any]] = mapped_column(JSON)
    library_key: Mapped[str] = mapped_column(String(4096))
    status: Mapped[str] = mapped_column(String(32), default="PENDING")
    messages: Mapped[list[str]] = mapped_column(JSON, default=list)
    for_all_clusters: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    error: Mapped[str | None] = mapped_column(Text)
    requested_at: Mapped[datetime] = mapped_column(default=now_utc)
    updated_at: Mapped[datetime] = mapped_column(default=now_utc)
