"""The catalog's names: catalogs, schemas, tables and volumes (Unity Catalog shaped).

Names are stored lower-cased (Unity Catalog names are case-insensitive). A table's data and
columns live in its Delta log at `storage_location`; these rows only hold what names it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kiln.store.models.base import Base, now_utc

__all__ = ["CatalogRow", "SchemaRow", "TableRow", "VolumeRow"]


class CatalogRow(Base):
    __tablename__ = "uc_catalogs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    comment: Mapped[str | None] = mapped_column(Text)
    # A DBFS path under which this catalog's managed tables and volumes live (None: default).
    storage_root: Mapped[str | None] = mapped_column(Text)
    properties: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    owner: Mapped[str] = mapped_column(String(255))
    created_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=now_utc)
    updated_by: Mapped[str | None] = mapped_column(String(255))
    updated_at: Mapped[datetime | None] = mapped_column()


class SchemaRow(Base):
    __tablename__ = "uc_schemas"
    __table_args__ = (UniqueConstraint("catalog_id", "name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    catalog_id: Mapped[str] = mapped_column(
        ForeignKey("uc_catalogs.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(255))
    comment: Mapped[str | None] = mapped_column(Text)
    storage_root: Mapped[str | None] = mapped_column(Text)
    properties: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    owner: Mapped[str] = mapped_column(String(255))
    created_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=now_utc)
    updated_by: Mapped[str | None] = mapped_column(String(255))
    updated_at: Mapped[datetime | None] = mapped_column()


class TableRow(Base):
    __tablename__ = "uc_tables"
    __table_args__ = (UniqueConstraint("schema_id", "name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    schema_id: Mapped[str] = mapped_column(
        ForeignKey("uc_schemas.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(255))
    table_type: Mapped[str] = mapped_column(String(32))  # MANAGED, EXTERNAL
    data_source_format: Mapped[str] = mapped_column(String(32))  # DELTA
    # A DBFS path (`/user/hive/warehouse/...`); rendered as a URL on the wire.
    storage_location: Mapped[str] = mapped_column(Text)
    comment: Mapped[str | None] = mapped_column(Text)
    properties: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    owner: Mapped[str] = mapped_column(String(255))
    created_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=now_utc)
    updated_by: Mapped[str | None] = mapped_column(String(255))
    updated_at: Mapped[datetime | None] = mapped_column()


class VolumeRow(Base):
    __tablename__ = "uc_volumes"
    __table_args__ = (UniqueConstraint("schema_id", "name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    schema_id: Mapped[str] = mapped_column(
        ForeignKey("uc_schemas.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(255))
    volume_type: Mapped[str] = mapped_column(String(32))  # MANAGED, EXTERNAL
    storage_location: Mapped[str] = mapped_column(Text)
    comment: Mapped[str | None] = mapped_column(Text)
    owner: Mapped[str] = mapped_column(String(255))
    created_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=now_utc)
    updated_by: Mapped[str | None] = mapped_column(String(255))
    updated_at: Mapped[datetime | None] = mapped_column()
