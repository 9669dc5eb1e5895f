"""Catalogs and schemas: the first two levels of every name, with the defaults every
workspace has (`main.default`, and `hive_metastore.default` for two-level names)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from kiln.catalog.names import (
    DEFAULT_CATALOG,
    DEFAULT_SCHEMA,
    HIVE_METASTORE,
    split_full_name,
    validate_name,
)
from kiln.catalog.storage import Storage
from kiln.errors import (
    InvalidParameterValue,
    PermissionDenied,
    ResourceAlreadyExists,
    ResourceDoesNotExist,
)
from kiln.principal import Principal
from kiln.store.models import CatalogRow, SchemaRow, TableRow, VolumeRow, now_utc

__all__ = [
    "SYSTEM_OWNER",
    "create_catalog",
    "create_schema",
    "delete_catalog",
    "delete_schema",
    "ensure_defaults",
    "get_catalog",
    "get_schema",
    "list_catalogs",
    "list_schemas",
    "require_owner",
    "update_catalog",
    "update_schema",
]

SYSTEM_OWNER = "System user"


def require_owner(caller: Principal, owner: str, what: str) -> None:
    """Raise 403 unless the caller owns the object or is an admin."""
    if not caller.is_admin and caller.user_name != owner:
        raise PermissionDenied(f"User {caller.user_name} is not an owner of {what}.")


async def ensure_defaults(session: AsyncSession) -> None:
    """Create `main.default` and `hive_metastore.default` if they are missing."""
    names = set(await session.scalars(select(CatalogRow.name)))
    for catalog in (DEFAULT_CATALOG, HIVE_METASTORE):
        if catalog in names:
            continue
        row = CatalogRow(
            id=str(uuid.uuid4()),
            name=catalog,
            comment="Main catalog (auto-created)" if catalog == DEFAULT_CATALOG else None,
            properties={},
            owner=SYSTEM_OWNER,
            created_by=SYSTEM_OWNER,
            created_at=now_utc(),
        )
        schema = SchemaRow(
            id=str(uuid.uuid4()),
            catalog_id=row.id,
            name=DEFAULT_SCHEMA,
            comment="Default schema (auto-created)",
            properties={},
            owner=SYSTEM_OWNER,
            created_by=SYSTEM_OWNER,
            created_at=now_utc(),
        )
        try:
            async with session.begin_nested():
                session.add(row)
                await session.flush()
                session.add(schema)
                await session.flush()
        except IntegrityError:
            pass  # another request created it at the same moment


async def get_catalog(session: AsyncSession, name: str) -> CatalogRow:
    """The catalog called `name`, or a 404."""
    await ensure_defaults(session)
    key = validate_name("catalog", name)
    row = await session.scalar(select(CatalogRow).where(CatalogRow.name == key))
    if row is None:
        raise ResourceDoesNotExist(f"Catalog '{key}' does not exist.")
    return row


async def list_catalogs(session: AsyncSession) -> list[CatalogRow]:
    """Every catalog, by name."""
    await ensure_defaults(session)
    return list(await session.scalars(select(CatalogRow).order_by(CatalogRow.name)))


def _storage_root(storage: Storage, raw: str | None) -> str | None:
    return None if raw is None else storage.dbfs_path(raw, what="storage_root")


async def create_catalog(
    session: AsyncSession,
    storage: Storage,
    caller: Principal,
    name: str | None,
    *,
    comment: str | None = None,
    properties: Mapping[str, str] | None = None,
    storage_root: str | None = None,
) -> CatalogRow:
    """Create a catalog owned by the caller."""
    await ensure_defaults(session)
    key = validate_name("catalog", name)
    if await session.scalar(select(CatalogRow.id).where(CatalogRow.name == key)) is not None:
        raise ResourceAlreadyExists(f"Catalog '{key}' already exists.")
    row = CatalogRow(
        id=str(uuid.uuid4()),
        name=key,
        comment=comment,
        storage_root=_storage_root(storage, storage_root),
        properties=dict(properties or {}),
        owner=caller.user_name,
        created_by=caller.user_name,
        created_at=now_utc(),
    )
    session.add(row)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise ResourceAlreadyExists(f"Catalog '{key}' already exists.") from exc
    # Every new catalog gets a `default` schema, as in Databricks.
    session.add(
        SchemaRow(
            id=str(uuid.uuid4()),
            catalog_id=row.id,
            name=DEFAULT_SCHEMA,
            comment="Default schema (auto-created)",
            properties={},
            owner=caller.user_name,
            created_by=caller.user_name,
            created_at=now_utc(),
        )
    )
    await session.flush()
    return row


def _apply_update(
    row: CatalogRow | SchemaRow, caller: Principal, changes: Mapping[str, Any]
) -> None:
    if changes.get("comment") is not None:
        row.comment = changes["comment"]
    if changes.get("properties") is not None:
        row.properties = dict(changes["properties"])
    if changes.get("owner") is not None:
        if not str(changes["owner"]).strip():
            raise InvalidParameterValue("owner must not be empty.")
        row.owner = str(changes["owner"])
    row.updated_by = caller.user_name
    row.updated_at = now_utc()


async def update_catalog(
    session: AsyncSession, caller: Principal, name: str, changes: Mapping[str, Any]
) -> CatalogRow:
    """Change a catalog's comment, properties, owner or name (owner or admin only)."""
    row = await get_catalog(session, name)
    require_owner(caller, row.owner, f"catalog '{row.name}'")
    if changes.get("new_name") is not None:
        new = validate_name("catalog", changes["new_name"])
        if row.name in (DEFAULT_CATALOG, HIVE_METASTORE):
            raise InvalidParameterValue(f"Catalog '{row.name}' cannot be renamed.")
        taken = await session.scalar(select(CatalogRow.id).where(CatalogRow.name == new))
        if new != row.name and taken is not None:
            raise ResourceAlreadyExists(f"Catalog '{new}' already exists.")
        row.name = new
    _apply_update(row, caller, changes)
    await session.flush()
    return row


async def delete_catalog(
    session: AsyncSession, caller: Principal, name: str, force: bool
) -> list[str]:
    """Delete a catalog (non-empty only with force); the managed DBFS paths to remove."""
    row = await get_catalog(session, name)
    require_owner(caller, row.owner, f"catalog '{row.name}'")
    if row.name in (DEFAULT_CATALOG, HIVE_METASTORE):
        raise InvalidParameterValue(f"The default catalog '{row.name}' cannot be deleted.")
    schemas = list(await session.scalars(select(SchemaRow).where(SchemaRow.catalog_id == row.id)))
    if not force and any(s.name != DEFAULT_SCHEMA for s in schemas):
        raise InvalidParameterValue(
            f"Cannot delete catalog '{row.name}': it is not empty. Use force to delete it with "
            "its contents."
        )
    paths: list[str] = []
    for schema in schemas:
        paths += await _schema_contents(session, schema, f"{row.name}.{schema.name}", force)
    await session.delete(row)
    await session.flush()
    return paths


async def _schema_contents(
    session: AsyncSession, schema: SchemaRow, full_name: str, force: bool
) -> list[str]:
    tables = list(await session.scalars(select(TableRow).where(TableRow.schema_id == schema.id)))
    volumes = list(await session.scalars(select(VolumeRow).where(VolumeRow.schema_id == schema.id)))
    if (tables or volumes) and not force:
        raise InvalidParameterValue(
            f"Cannot delete {full_name}: it is not empty. Use force to delete it with its contents."
        )
    return [t.storage_location for t in tables if t.table_type == "MANAGED"] + [
        v.storage_location for v in volumes if v.volume_type == "MANAGED"
    ]


async def get_schema(session: AsyncSession, full_name: str) -> tuple[CatalogRow, SchemaRow]:
    """The schema `catalog.schema` with its catalog, or a 404."""
    catalog_name, schema_name = split_full_name("schema", full_name, 2)
    catalog = await get_catalog(session, catalog_name)
    row = await session.scalar(
        select(SchemaRow).where(SchemaRow.catalog_id == catalog.id, SchemaRow.name == schema_name)
    )
    if row is None:
        raise ResourceDoesNotExist(f"Schema '{catalog.name}.{schema_name}' does not exist.")
    return catalog, row


async def list_schemas(
    session: AsyncSession, catalog_name: str | None
) -> tuple[CatalogRow, list[SchemaRow]]:
    """A catalog's schemas, by name."""
    if not catalog_name:
        raise InvalidParameterValue("catalog_name is required.")
    catalog = await get_catalog(session, catalog_name)
    rows = await session.scalars(
        select(SchemaRow).where(SchemaRow.catalog_id == catalog.id).order_by(SchemaRow.name)
    )
    return catalog, list(rows)


async def create_schema(
    session: AsyncSession,
    storage: Storage,
    caller: Principal,
    catalog_name: str | None,
    name: str | None,
    *,
    comment: str | None = None,
    properties: Mapping[str, str] | None = None,
    storage_root: str | None = None,
) -> tuple[CatalogRow, SchemaRow]:
    """Create a schema in a catalog, owned by the caller."""
    if not catalog_name:
        raise InvalidParameterValue("catalog_name is required.")
    catalog = await get_catalog(session, catalog_name)
    key = validate_name("schema", name)
    taken = await session.scalar(
        select(SchemaRow.id).where(SchemaRow.catalog_id == catalog.id, SchemaRow.name == key)
    )
    if taken is not None:
        raise ResourceAlreadyExists(f"Schema '{catalog.name}.{key}' already exists.")
    row = SchemaRow(
        id=str(uuid.uuid4()),
        catalog_id=catalog.id,
        name=key,
        comment=comment,
        storage_root=_storage_root(storage, storage_root),
        properties=dict(properties or {}),
        owner=caller.user_name,
        created_by=caller.user_name,
        created_at=now_utc(),
    )
    session.add(row)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise ResourceAlreadyExists(f"Schema '{catalog.name}.{key}' already exists.") from exc
    return catalog, row


async def update_schema(
    session: AsyncSession, caller: Principal, full_name: str, changes: Mapping[str, Any]
) -> tuple[CatalogRow, SchemaRow]:
    """Change a schema's comment, properties, owner or name (owner or admin only)."""
    catalog, row = await get_schema(session, full_name)
    require_owner(caller, row.owner, f"schema '{catalog.name}.{row.name}'")
    if changes.get("new_name") is not None:
        new = validate_name("schema", changes["new_name"])
        taken = await session.scalar(
            select(SchemaRow.id).where(SchemaRow.catalog_id == catalog.id, SchemaRow.name == new)
        )
        if new != row.name and taken is not None:
            raise ResourceAlreadyExists(f"Schema '{catalog.name}.{new}' already exists.")
        row.name = new
    _apply_update(row, caller, changes)
    await session.flush()
    return catalog, row


async def delete_schema(
    session: AsyncSession, caller: Principal, full_name: str, force: bool
) -> list[str]:
    """Delete a schema (non-empty only with force); the managed DBFS paths to remove."""
    catalog, row = await get_schema(session, full_name)
    require_owner(caller, row.owner, f"schema '{catalog.name}.{row.name}'")
    paths = await _schema_contents(session, row, f"{catalog.name}.{row.name}", force)
    await session.delete(row)
    await session.flush()
    return paths
