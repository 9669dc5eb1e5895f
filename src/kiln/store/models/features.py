"""Feature store lineage: the feature tables the control plane knows, and who uses them.

A feature table row is its metadata as the feature-engineering client reported it (the data
itself is a Delta table the client writes). A lineage row is one producer (a notebook or job
that created or wrote the table) or consumer (a model version logged with lookups of it, or a
notebook that built a training set from it), recorded once per (table, role, kind, ref).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kiln.store.models.base import Base, now_utc

__all__ = ["FeatureLineage", "FeatureTableRecord"]


class FeatureTableRecord(Base):
    __tablename__ = "feature_tables"

    name: Mapped[str] = mapped_column(String(767), primary_key=True)
    id: Mapped[str] = mapped_column(String(36), unique=True)
    primary_keys: Mapped[list[str]] = mapped_column(JSON)
    timestamp_keys: Mapped[list[str]] = mapped_column(JSON)
    description: Mapped[str | None] = mapped_column(Text)
    creator: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=now_utc)
    updated_at: Mapped[datetime] = mapped_column(default=now_utc)
    # Online stores the table was published to ({"kind": ..., "published_at": ms}).
    online_stores: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)


class FeatureLineage(Base):
    __tablename__ = "feature_lineage"
    __table_args__ = (UniqueConstraint("table_name", "role", "kind", "ref", "detail"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    table_name: Mapped[str] = mapped_column(
        ForeignKey("feature_tables.name", ondelete="CASCADE"), index=True
    )
    role: Mapped[str] = mapped_column(String(16))  # PRODUCER, CONSUMER
    kind: Mapped[str] = mapped_column(String(16))  # NOTEBOOK, JOB, MODEL
    # The notebook's path, the job's id, or the model's full name.
    ref: Mapped[str] = mapped_column(String(1024))
    # The job's run id, or the model's version ("" when there is none).
    detail: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))  # CREATE, WRITE, TRAINING_SET, LOG_MODEL
    created_at: Mapped[datetime] = mapped_column(default=now_utc)
