"""Unity Catalog API (/api/2.1/unity-catalog): catalogs, schemas, tables and volumes."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, TypeVar

from fastapi import APIRouter

from kiln.catalog import Storage, metastore, tables, volumes
from kiln.errors import InvalidParameterValue
from kiln.paging import decode_page_token, encode_page_token
from kiln.server.deps import CurrentPrincipal, Session, State
from kiln.server.schemas.catalog import (
    CatalogInfo,
    CreateCatalog,
    CreateSchema,
    CreateTable,
    CreateVolume,
    SchemaInfo,
    TableInfo,
    UpdateCatalog,
    UpdateSchema,
    UpdateTable,
    UpdateVolume,
    VolumeInfo,
)
from kiln.server.state import AppState

router = APIRouter(tags=["unity-catalog"])

PREFIX = "/api/2.1/unity-catalog"
# The page length when a client asks for `max_results=0` ("a server configured value").
PAGE = 1000
T = TypeVar("T")


def _storage(state: AppState) -> Storage:
    return Storage(state.settings.dbfs_root_url)


def _page(
    items: Sequence[T], max_results: int | None, page_token: str | None
) -> tuple[Sequence[T], str | None]:
    if max_results is not None and max_results < 0:
        raise InvalidParameterValue("max_results must be greater than or equal to 0.")
    start = decode_page_token(page_token)
    if max_results is None:
        return items[start:], None
    end = start + (min(max_results, PAGE) if max_results else PAGE)
    return items[start:end], encode_page_token(end) if end < len(items) else None


async def _remove(storage: Storage, paths: Sequence[str | None]) -> None:
    for path in paths:
        if path:
            await asyncio.to_thread(storage.remove_tree, path)


# -- catalogs --------------------------------------------------------------------------------


@router.post(f"{PREFIX}/catalogs")
async def create_catalog(
    body: CreateCatalog, session: Session, state: State, me: CurrentPrincipal
) -> dict[str, Any]:
    """Create a catalog (with its `default` schema)."""
    if body.connection_name or body.provider_name or body.share_name:
        raise InvalidParameterValue("Foreign and Delta Sharing catalogs are not supported.")
    storage = _storage(state)
    row = await metastore.create_catalog(
        session,
        storage,
        me,
        body.name,
        comment=body.comment,
        properties=body.properties,
        storage_root=body.storage_root,
    )
    return CatalogInfo.of(row, storage).wire()


@router.get(f"{PREFIX}/catalogs")
async def list_catalogs(
    session: Session,
    state: State,
    me: CurrentPrincipal,
    max_results: int | None = None,
    page_token: str | None = None,
) -> dict[str, Any]:
    """Every catalog."""
    storage = _storage(state)
    rows, token = _page(await metastore.list_catalogs(session), max_results, page_token)
    answer: dict[str, Any] = {"catalogs": [CatalogInfo.of(r, storage).wire() for r in rows]}
    if token:
        answer["next_page_token"] = token
    return answer


@router.get(f"{PREFIX}/catalogs/{{name}}")
async def get_catalog(
    name: str, session: Session, state: State, me: CurrentPrincipal
) -> dict[str, Any]:
    """One catalog."""
    return CatalogInfo.of(await metastore.get_catalog(session, name), _storage(state)).wire()


@router.patch(f"{PREFIX}/catalogs/{{name}}")
async def update_catalog(
    name: str, body: UpdateCatalog, session: Session, state: State, me: CurrentPrincipal
) -> dict[str, Any]:
    """Change a catalog's comment, properties, owner or name."""
    row = await metastore.update_catalog(session, me, name, body.model_dump())
    return CatalogInfo.of(row, _storage(state)).wire()


@router.delete(f"{PREFIX}/catalogs/{{name}}")
async def delete_catalog(
    name: str, session: Session, state: State, me: CurrentPrincipal, force: bool = False
) -> dict[str, Any]:
    """Delete a catalog; with force, its schemas, tables and volumes too."""
    paths = await metastore.delete_catalog(session, me, name, force)
    await session.commit()
    await _remove(_storage(state), paths)
    return {}


# -- schemas ---------------------------------------------------------------------------------


@router.post(f"{PREFIX}/schemas")
async def create_schema(
    body: CreateSchema, session: Session, state: State, me: CurrentPrincipal
) -> dict[str, Any]:
    """Create a schema in a catalog."""
    storage = _storage(state)
    catalog, row = await metastore.create_schema(
        session,
        storage,
        me,
        body.catalog_name,
        body.name,
        comment=body.comment,
        properties=body.properties,
        storage_root=body.storage_root,
    )
    return SchemaInfo.of(catalog, row, storage).wire()


@router.get(f"{PREFIX}/schemas")
async def list_schemas(
    session: Session,
    state: State,
    me: CurrentPrincipal,
    catalog_name: str | None = None,
    max_results: int | None = None,
    page_token: str | None = None,
) -> dict[str, Any]:
    """A catalog's schemas."""
    storage = _storage(state)
    catalog, rows = await metastore.list_schemas(session, catalog_name)
    page, token = _page(rows, max_results, page_token)
    answer: dict[str, Any] = {"schemas": [SchemaInfo.of(catalog, r, storage).wire() for r in page]}
    if token:
        answer["next_page_token"] = token
    return answer


@router.get(f"{PREFIX}/schemas/{{full_name}}")
async def get_schema(
    full_name: str, session: Session, state: State, me: CurrentPrincipal
) -> dict[str, Any]:
    """One schema."""
    catalog, row = await metastore.get_schema(session, full_name)
    return SchemaInfo.of(catalog, row, _storage(state)).wire()


@router.patch(f"{PREFIX}/schemas/{{full_name}}")
async def update_schema(
    full_name: str, body: UpdateSchema, session: Session, state: State, me: CurrentPrincipal
) -> dict[str, Any]:
    """Change a schema's comment, properties, owner or name."""
    catalog, row = await metastore.update_schema(session, me, full_name, body.model_dump())
    return SchemaInfo.of(catalog, row, _storage(state)).wire()


@router.delete(f"{PREFIX}/schemas/{{full_name}}")
async def delete_schema(
    full_name: str, session: Session, state: State, me: CurrentPrincipal, force: bool = False
) -> dict[str, Any]:
    """Delete a schema; with force, its tables and volumes too."""
    paths = await metastore.delete_schema(session, me, full_name, force)
    await session.commit()
    await _remove(_storage(state), paths)
    return {}


# -- tables ----------------------------------------------------------------------------------


@router.post(f"{PREFIX}/tables")
async def create_table(
    body: CreateTable, session: Session, state: State, me: CurrentPrincipal
) -> dict[str, Any]:
    """Register a Delta table (an empty one is created from `columns` if none exists)."""
    storage = _storage(state)
    view = await tables.create_table(
        session,
        storage,
        me.user_name,
        body.catalog_name,
        body.schema_name,
        body.name,
        table_type=body.table_type,
        data_source_format=body.data_source_format,
        storage_location=body.storage_location,
        columns=[c.model_dump() for c in body.columns] if body.columns else None,
        properties=body.properties,
        comment=body.comment,
    )
    return TableInfo.of(view, storage).wire()


@router.get(f"{PREFIX}/tables")
async def list_tables(
    session: Session,
    state: State,
    me: CurrentPrincipal,
    catalog_name: str | None = None,
    schema_name: str | None = None,
    max_results: int | None = None,
    page_token: str | None = None,
    omit_columns: bool = False,
) -> dict[str, Any]:
    """The tables of one schema."""
    storage = _storage(state)
    views = await tables.list_tables(session, storage, catalog_name, schema_name)
    page, token = _page(views, max_results, page_token)
    answer: dict[str, Any] = {
        "tables": [TableInfo.of(v, storage, columns=not omit_columns).wire() for v in page]
    }
    if token:
        answer["next_page_token"] = token
    return answer


@router.get(f"{PREFIX}/tables/{{full_name}}/exists")
async def table_exists(full_name: str, session: Session, me: CurrentPrincipal) -> dict[str, Any]:
    """Whether the table exists."""
    return {"table_exists": await tables.table_exists(session, full_name)}


@router.get(f"{PREFIX}/tables/{{full_name}}")
async def get_table(
    full_name: str, session: Session, state: State, me: CurrentPrincipal
) -> dict[str, Any]:
    """One table with its columns (read from its Delta log)."""
    storage = _storage(state)
    return TableInfo.of(await tables.get_table(session, storage, full_name), storage).wire()


@router.patch(f"{PREFIX}/tables/{{full_name}}")
async def update_table(
    full_name: str, body: UpdateTable, session: Session, state: State, me: CurrentPrincipal
) -> dict[str, Any]:
    """Change a table's owner."""
    storage = _storage(state)
    view = await tables.update_table(session, storage, me, full_name, body.owner)
    return TableInfo.of(view, storage, columns=False).wire()


@router.delete(f"{PREFIX}/tables/{{full_name}}")
async def delete_table(
    full_name: str, session: Session, state: State, me: CurrentPrincipal
) -> dict[str, Any]:
    """Drop a table; a MANAGED table's files go with it."""
    path = await tables.delete_table(session, me, full_name)
    await session.commit()
    await _remove(_storage(state), [path])
    return {}


# -- volumes ---------------------------------------------------------------------------------


@router.post(f"{PREFIX}/volumes")
async def create_volume(
    body: CreateVolume, session: Session, state: State, me: CurrentPrincipal
) -> dict[str, Any]:
    """Create a volume."""
    storage = _storage(state)
    view = await volumes.create_volume(
        session,
        storage,
        me,
        body.catalog_name,
        body.schema_name,
        body.name,
        body.volume_type,
        storage_location=body.storage_location,
        comment=body.comment,
    )
    return VolumeInfo.of(view, storage).wire()


@router.get(f"{PREFIX}/volumes")
async def list_volumes(
    session: Session,
    state: State,
    me: CurrentPrincipal,
    catalog_name: str | None = None,
    schema_name: str | None = None,
    max_results: int | None = None,
    page_token: str | None = None,
) -> dict[str, Any]:
    """The volumes of one schema."""
    storage = _storage(state)
    views = await volumes.list_volumes(session, catalog_name, schema_name)
    page, token = _page(views, max_results, page_token)
    answer: dict[str, Any] = {"volumes": [VolumeInfo.of(v, storage).wire() for v in page]}
    if token:
        answer["next_page_token"] = token
    return answer


@router.get(f"{PREFIX}/volumes/{{name}}")
async def get_volume(
    name: str, session: Session, state: State, me: CurrentPrincipal
) -> dict[str, Any]:
    """One volume."""
    return VolumeInfo.of(await volumes.get_volume(session, name), _storage(state)).wire()


@router.patch(f"{PREFIX}/volumes/{{name}}")
async def update_volume(
    name: str, body: UpdateVolume, session: Session, state: State, me: CurrentPrincipal
) -> dict[str, Any]:
    """Rename a volume or change its comment or owner."""
    view = await volumes.update_volume(
        session,
        _storage(state),
        me,
        name,
        new_name=body.new_name,
        comment=body.comment,
        owner=body.owner,
    )
    return VolumeInfo.of(view, _storage(state)).wire()


@router.delete(f"{PREFIX}/volumes/{{name}}")
async def delete_volume(
    name: str, session: Session, state: State, me: CurrentPrincipal
) -> dict[str, Any]:
    """Delete a volume; a MANAGED volume's files go with it."""
    path = await volumes.delete_volume(session, me, name)
    await session.commit()
    await _remove(_storage(state), [path])
    return {}
