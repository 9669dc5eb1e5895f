"""Unity Catalog API wire shapes (`/api/2.1/unity-catalog/...`, databricks-sdk's field names).

Store rows convert to these explicitly; storage paths are shown as the URLs clients open.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from kiln.catalog import Storage, TableView
from kiln.catalog.volumes import VolumeView
from kiln.store.models import CatalogRow, SchemaRow, to_epoch_ms

__all__ = [
    "CatalogInfo",
    "ColumnInfo",
    "CreateCatalog",
    "CreateSchema",
    "CreateTable",
    "CreateVolume",
    "SchemaInfo",
    "TableInfo",
    "UpdateCatalog",
    "UpdateSchema",
    "UpdateTable",
    "UpdateVolume",
    "VolumeInfo",
]

METASTORE_ID = "kiln-metastore"


class _Wire(BaseModel):
    def wire(self) -> dict[str, Any]:
        """The JSON body, without unset fields (as Databricks answers)."""
        return self.model_dump(exclude_none=True)


class CreateCatalog(BaseModel):
    name: str | None = None
    comment: str | None = None
    properties: dict[str, str] | None = None
    storage_root: str | None = None
    # Foreign and shared catalogs do not exist here; a value for them is refused.
    connection_name: str | None = None
    provider_name: str | None = None
    share_name: str | None = None


class UpdateCatalog(BaseModel):
    comment: str | None = None
    new_name: str | None = None
    owner: str | None = None
    properties: dict[str, str] | None = None


class CatalogInfo(_Wire):
    name: str
    full_name: str
    catalog_type: str = "MANAGED_CATALOG"
    comment: str | None = None
    owner: str
    properties: dict[str, str] = Field(default_factory=dict)
    storage_root: str | None = None
    storage_location: str | None = None
    metastore_id: str = METASTORE_ID
    securable_type: str = "CATALOG"
    isolation_mode: str = "OPEN"
    created_at: int
    created_by: str
    updated_at: int | None = None
    updated_by: str | None = None

    @classmethod
    def of(cls, row: CatalogRow, storage: Storage) -> CatalogInfo:
        root = storage.url(row.storage_root) if row.storage_root else None
        return cls(
            name=row.name,
            full_name=row.name,
            comment=row.comment,
            owner=row.owner,
            properties=row.properties or {},
            storage_root=root,
            storage_location=root,
            created_at=to_epoch_ms(row.created_at),
            created_by=row.created_by,
            updated_at=to_epoch_ms(row.updated_at) if row.updated_at else None,
            updated_by=row.updated_by,
        )


class CreateSchema(BaseModel):
    name: str | None = None
    catalog_name: str | None = None
    comment: str | None = None
    properties: dict[str, str] | None = None
    storage_root: str | None = None


class UpdateSchema(BaseModel):
    comment: str | None = None
    new_name: str | None = None
    owner: str | None = None
    properties: dict[str, str] | None = None


class SchemaInfo(_Wire):
    name: str
    catalog_name: str
    full_name: str
    schema_id: str
    catalog_type: str = "MANAGED_CATALOG"
    comment: str | None = None
    owner: str
    properties: dict[str, str] = Field(default_factory=dict)
    storage_root: str | None = None
    storage_location: str | None = None
    metastore_id: str = METASTORE_ID
    created_at: int
    created_by: str
    updated_at: int | None = None
    updated_by: str | None = None

    @classmethod
    def of(cls, catalog: CatalogRow, row: SchemaRow, storage: Storage) -> SchemaInfo:
        root = storage.url(row.storage_root) if row.storage_root else None
        return cls(
            name=row.name,
            catalog_name=catalog.name,
            full_name=f"{catalog.name}.{row.name}",
            schema_id=row.id,
            comment=row.comment,
            owner=row.owner,
            properties=row.properties or {},
            storage_root=root,
            storage_location=root,
            created_at=to_epoch_ms(row.created_at),
            created_by=row.created_by,
            updated_at=to_epoch_ms(row.updated_at) if row.updated_at else None,
            updated_by=row.updated_by,
        )


class ColumnInfo(_Wire):
    name: str
    type_name: str | None = None
    type_text: str | None = None
    type_json: str | None = None
    type_precision: int | None = None
    type_scale: int | None = None
    position: int | None = None
    nullable: bool | None = None
    partition_index: int | None = None
    comment: str | None = None


class CreateTable(BaseModel):
    name: str | None = None
    catalog_name: str | None = None
    schema_name: str | None = None
    table_type: str | None = None
    data_source_format: str | None = None
    storage_location: str | None = None
    columns: list[ColumnInfo] | None = None
    properties: dict[str, str] | None = None
    comment: str | None = None


class UpdateTable(BaseModel):
    owner: str | None = None


class TableInfo(_Wire):
    name: str
    catalog_name: str
    schema_name: str
    full_name: str
    table_id: str
    table_type: str
    data_source_format: str
    storage_location: str
    columns: list[ColumnInfo] | None = None
    comment: str | None = None
    owner: str
    properties: dict[str, str] = Field(default_factory=dict)
    metastore_id: str = METASTORE_ID
    created_at: int
    created_by: str
    updated_at: int | None = None
    updated_by: str | None = None

    @classmethod
    def of(cls, view: TableView, storage: Storage, *, columns: bool = True) -> TableInfo:
        row = view.row
        cols: list[ColumnInfo] | None = None
        properties = dict(row.properties or {})
        if view.snapshot is not None:
            properties["delta.lastCommitVersion"] = str(view.snapshot.version)
            if columns:
                cols = [
                    ColumnInfo(
                        name=c.name,
                        type_name=c.type_name,
                        type_text=c.type_text,
                        type_json=c.type_json,
                        position=c.position,
                        nullable=c.nullable,
                        partition_index=c.partition_index,
                        comment=c.comment,
                    )
                    for c in view.snapshot.columns
                ]
        return cls(
            name=row.name,
            catalog_name=view.catalog.name,
            schema_name=view.schema.name,
            full_name=view.full_name,
            table_id=row.id,
            table_type=row.table_type,
            data_source_format=row.data_source_format,
            storage_location=storage.url(row.storage_location),
            columns=cols,
            comment=row.comment,
            owner=row.owner,
            properties=properties,
            created_at=to_epoch_ms(row.created_at),
            created_by=row.created_by,
            updated_at=to_epoch_ms(row.updated_at) if row.updated_at else None,
            updated_by=row.updated_by,
        )


class CreateVolume(BaseModel):
    name: str | None = None
    catalog_name: str | None = None
    schema_name: str | None = None
    volume_type: str | None = None
    storage_location: str | None = None
    comment: str | None = None


class UpdateVolume(BaseModel):
    new_name: str | None = None
    comment: str | None = None
    owner: str | None = None


class VolumeInfo(_Wire):
    name: str
    catalog_name: str
    schema_name: str
    full_name: str
    volume_id: str
    volume_type: str
    storage_location: str
    comment: str | None = None
    owner: str
    metastore_id: str = METASTORE_ID
    created_at: int
    created_by: str
    updated_at: int | None = None
    updated_by: str | None = None

    @classmethod
    def of(cls, view: VolumeView, storage: Storage) -> VolumeInfo:
        row = view.row
        return cls(
            name=row.name,
            catalog_name=view.catalog.name,
            schema_name=view.schema.name,
            full_name=view.full_name,
            volume_id=row.id,
            volume_type=row.volume_type,
            storage_location=storage.url(row.storage_location),
            comment=row.comment,
            owner=row.owner,
            created_at=to_epoch_ms(row.created_at),
            created_by=row.created_by,
            updated_at=to_epoch_ms(row.updated_at) if row.updated_at else None,
            updated_by=row.updated_by,
        )
