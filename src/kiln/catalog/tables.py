"""Tables: names in the store, data and columns in each table's Delta log.

A MANAGED table lives under its catalog's (or schema's) storage root, by default the
metastore's warehouse folder in DBFS, and its files go when it is dropped; an EXTERNAL table
names a location inside DBFS and keeps its files. Two tables (or a table and a volume) never
share or nest locations.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from kiln.catalog import delta_log
from kiln.catalog.delta_log import DeltaSnapshot
from kiln.catalog.metastore import get_schema, require_owner
from kiln.catalog.names import split_full_name, validate_name
from kiln.catalog.storage import WAREHOUSE, Storage
from kiln.errors import InvalidParameterValue, ResourceAlreadyExists, ResourceDoesNotExist
from kiln.principal import Principal
from kiln.store.models import CatalogRow, SchemaRow, TableRow, VolumeRow, now_utc

__all__ = [
    "DELTA",
    "EXTERNAL",
    "MANAGED",
    "TableView",
    "check_free_location",
    "create_table",
    "delete_table",
    "get_table",
    "list_tables",
    "managed_location",
    "register_table",
    "table_exists",
    "update_table",
]

MANAGED = "MANAGED"
EXTERNAL = "EXTERNAL"
DELTA = "DELTA"


@dataclass
class TableView:
    """A table's rows and, unless omitted, what its Delta log says now."""

    catalog: CatalogRow
    schema: SchemaRow
    row: TableRow
    snapshot: DeltaSnapshot | None

    @property
    def full_name(self) -> str:
        """`catalog.schema.table`."""
        return f"{self.catalog.name}.{self.schema.name}.{self.row.name}"


def not_found(full_name: str) -> ResourceDoesNotExist:
    """Databricks' answer for a missing table."""
    return ResourceDoesNotExist(f"Table '{full_name}' does not exist.")


async def _snapshot(storage: Storage, row: TableRow) -> DeltaSnapshot | None:
    url = storage.url(row.storage_location)

    def read() -> DeltaSnapshot | None:
        # A managed table is registered a moment before its creator writes version 0.
        if not delta_log.has_log(url):
            return None
        return delta_log.read_snapshot(url)

    return await asyncio.to_thread(read)


async def _find(session: AsyncSession, full_name: str) -> tuple[CatalogRow, SchemaRow, TableRow]:
    catalog_name, schema_name, table_name = split_full_name("table", full_name, 3)
    try:
        catalog, schema = await get_schema(session, f"{catalog_name}.{schema_name}")
    except ResourceDoesNotExist as exc:
        raise ResourceDoesNotExist(f"{exc.message[:-1]} (table '{full_name}').") from exc
    row = await session.scalar(
        select(TableRow).where(TableRow.schema_id == schema.id, TableRow.name == table_name)
    )
    if row is None:
        raise not_found(f"{catalog.name}.{schema.name}.{table_name}")
    return catalog, schema, row


async def get_table(
    session: AsyncSession, storage: Storage, full_name: str, *, with_log: bool = True
) -> TableView:
    """A table by its full name, with its latest log snapshot; a 404 if missing."""
    catalog, schema, row = await _find(session, full_name)
    snapshot = await _snapshot(storage, row) if with_log else None
    return TableView(catalog, schema, row, snapshot)


async def table_exists(session: AsyncSession, full_name: str) -> bool:
    """Whether a table of this name exists (its catalog and schema must)."""
    try:
        await _find(session, full_name)
    except ResourceDoesNotExist:
        return False
    return True


async def list_tables(
    session: AsyncSession,
    storage: Storage,
    catalog_name: str | None,
    schema_name: str | None,
    *,
    with_log: bool = True,
) -> list[TableView]:
    """The tables of one schema, by name."""
    if not catalog_name:
        raise InvalidParameterValue("catalog_name is required.")
    if not schema_name:
        raise InvalidParameterValue("schema_name is required.")
    catalog, schema = await get_schema(session, f"{catalog_name}.{schema_name}")
    rows = await session.scalars(
        select(TableRow).where(TableRow.schema_id == schema.id).order_by(TableRow.name)
    )
    views = []
    for row in rows:
        snapshot = await _snapshot(storage, row) if with_log else None
        views.append(TableView(catalog, schema, row, snapshot))
    return views


def managed_location(catalog: CatalogRow, schema: SchemaRow, name: str) -> str:
    """A fresh DBFS folder for a managed object (unique: a dropped name's files may linger)."""
    suffix = uuid.uuid4().hex[:12]
    if schema.storage_root:
        return f"{schema.storage_root}/{name}-{suffix}"
    if catalog.storage_root:
        return f"{catalog.storage_root}/{schema.name}/{name}-{suffix}"
    return f"{WAREHOUSE}/{catalog.name}/{schema.name}/{name}-{suffix}"


async def check_free_location(session: AsyncSession, path: str) -> None:
    """Refuse a location equal to, inside, or around another table's or volume's."""
    taken = list(await session.scalars(select(TableRow.storage_location)))
    taken += list(await session.scalars(select(VolumeRow.storage_location)))
    for other in taken:
        if path == other or path.startswith(other + "/") or other.startswith(path + "/"):
            raise InvalidParameterValue(
                f"LOCATION dbfs:{path} overlaps with the location of an existing table or "
                f"volume (dbfs:{other})."
            )


async def create_table(
    session: AsyncSession,
    storage: Storage,
    owner: str,
    catalog_name: str | None,
    schema_name: str | None,
    name: str | None,
    *,
    table_type: str | None = None,
    data_source_format: str | None = None,
    storage_location: str | None = None,
    columns: Sequence[Mapping[str, Any]] | None = None,
    properties: Mapping[str, str] | None = None,
    comment: str | None = None,
) -> TableView:
    """Register a Delta table, writing an empty version 0 when columns are given and the
    location has no log yet. A MANAGED table without columns is registered for its creator
    to write version 0 at once (CREATE TABLE AS SELECT)."""
    if not catalog_name or not schema_name:
        raise InvalidParameterValue("catalog_name and schema_name are required.")
    key = validate_name("table", name)
    kind = (table_type or MANAGED).upper()
    if kind not in (MANAGED, EXTERNAL):
        raise InvalidParameterValue(
            f"Unsupported table_type {table_type!r}: Kiln creates MANAGED and EXTERNAL tables."
        )
    if (data_source_format or DELTA).upper() != DELTA:
        raise InvalidParameterValue(
            f"Unsupported data_source_format {data_source_format!r}: Kiln tables are DELTA."
        )
    catalog, schema = await get_schema(session, f"{catalog_name}.{schema_name}")
    full_name = f"{catalog.name}.{schema.name}.{key}"
    existing = await session.scalar(
        select(TableRow.id).where(TableRow.schema_id == schema.id, TableRow.name == key)
    )
    if existing is not None:
        raise ResourceAlreadyExists(f"Table '{full_name}' already exists.")
    if kind == MANAGED:
        if storage_location:
            raise InvalidParameterValue("A MANAGED table takes no storage_location.")
        path = managed_location(catalog, schema, key)
    else:
        if not storage_location:
            raise InvalidParameterValue("An EXTERNAL table needs a storage_location.")
        path = storage.dbfs_path(storage_location, what="storage_location")
    await check_free_location(session, path)
    url = storage.url(path)
    has_log = await asyncio.to_thread(delta_log.has_log, url)
    if not has_log and columns:
        await asyncio.to_thread(delta_log.create_empty, url, [dict(c) for c in columns], key)
    elif not has_log and kind == EXTERNAL:
        raise InvalidParameterValue(
            f"No Delta table at {storage_location!r}: give columns to create an empty one."
        )
    row = TableRow(
        id=str(uuid.uuid4()),
        schema_id=schema.id,
        name=key,
        table_type=kind,
        data_source_format=DELTA,
        storage_location=path,
        comment=comment,
        properties=dict(properties or {}),
        owner=owner,
        created_by=owner,
        created_at=now_utc(),
    )
    session.add(row)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise ResourceAlreadyExists(f"Table '{full_name}' already exists.") from exc
    return TableView(catalog, schema, row, await _snapshot(storage, row))


async def register_table(
    session: AsyncSession,
    storage: Storage,
    full_name: str,
    location: str,
    *,
    owner: str,
    comment: str | None = None,
    properties: Mapping[str, str] | None = None,
) -> TableView:
    """Register an existing Delta table (written with deltalake at `location`, inside DBFS)
    as an EXTERNAL table named `full_name`; its catalog and schema must exist."""
    catalog_name, schema_name, name = split_full_name("table", full_name, 3)
    return await create_table(
        session,
        storage,
        owner,
        catalog_name,
        schema_name,
        name,
        table_type=EXTERNAL,
        storage_location=location,
        properties=properties,
        comment=comment,
    )


async def update_table(
    session: AsyncSession, storage: Storage, caller: Principal, full_name: str, owner: str | None
) -> TableView:
    """Change a table's owner (its owner or an admin)."""
    view = await get_table(session, storage, full_name, with_log=False)
    require_owner(caller, view.row.owner, f"table '{view.full_name}'")
    if owner is not None:
        if not owner.strip():
            raise InvalidParameterValue("owner must not be empty.")
        view.row.owner = owner
    view.row.updated_by = caller.user_name
    view.row.updated_at = now_utc()
    await session.flush()
    return view


async def delete_table(session: AsyncSession, caller: Principal, full_name: str) -> str | None:
    """Drop a table (its owner or an admin); the DBFS path to remove if it was MANAGED."""
    catalog, schema, row = await _find(session, full_name)
    require_owner(caller, row.owner, f"table '{catalog.name}.{schema.name}.{row.name}'")
    await session.delete(row)
    await session.flush()
    return row.storage_location if row.table_type == MANAGED else None
