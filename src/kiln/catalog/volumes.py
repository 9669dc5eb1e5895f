"""Volumes: folders of files under `/Volumes/<catalog>/<schema>/<volume>`, MANAGED (under the
metastore's storage, removed on delete) or EXTERNAL (a DBFS location, kept)."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from kiln.catalog.metastore import get_schema, require_owner
from kiln.catalog.names import split_full_name, validate_name
from kiln.catalog.storage import Storage
from kiln.catalog.tables import EXTERNAL, MANAGED, check_free_location
from kiln.errors import InvalidParameterValue, ResourceAlreadyExists, ResourceDoesNotExist
from kiln.principal import Principal
from kiln.store.models import CatalogRow, SchemaRow, VolumeRow, now_utc

__all__ = [
    "VOLUMES_MOUNT",
    "VolumeView",
    "create_volume",
    "delete_volume",
    "files_path",
    "get_volume",
    "is_volume_path",
    "list_volumes",
    "update_volume",
]

# Where clients address volume files (Files API, dbutils.fs). A managed volume's files live at
# the same DBFS path, so every DBFS-based API (DBFS API, dbutils.fs, /dbfs/...) sees them too.
VOLUMES_MOUNT = "/Volumes"


def is_volume_path(path: str) -> bool:
    """Whether a clean absolute path lies under /Volumes."""
    return path == VOLUMES_MOUNT or path.startswith(VOLUMES_MOUNT + "/")


async def files_path(session: AsyncSession, path: str) -> str:
    """The DBFS path of `/Volumes/<catalog>/<schema>/<volume>/...`: the volume's storage
    (an external volume's location). A path that names no volume stays a plain DBFS path,
    as before volumes existed (Files API clients and tests use such paths)."""
    parts = path.split("/")
    if len(parts) < 5 or not parts[4]:
        return path
    try:
        view = await get_volume(session, ".".join(parts[2:5]))
    except (ResourceDoesNotExist, InvalidParameterValue):
        return path
    rest = "/".join(parts[5:])
    return view.row.storage_location + (f"/{rest}" if rest else "")


@dataclass
class VolumeView:
    """A volume with its catalog and schema."""

    catalog: CatalogRow
    schema: SchemaRow
    row: VolumeRow

    @property
    def full_name(self) -> str:
        """`catalog.schema.volume`."""
        return f"{self.catalog.name}.{self.schema.name}.{self.row.name}"


async def get_volume(session: AsyncSession, full_name: str) -> VolumeView:
    """A volume by its full name, or a 404."""
    catalog_name, schema_name, name = split_full_name("volume", full_name, 3)
    catalog, schema = await get_schema(session, f"{catalog_name}.{schema_name}")
    row = await session.scalar(
        select(VolumeRow).where(VolumeRow.schema_id == schema.id, VolumeRow.name == name)
    )
    if row is None:
        raise ResourceDoesNotExist(f"Volume '{catalog.name}.{schema.name}.{name}' does not exist.")
    return VolumeView(catalog, schema, row)


async def list_volumes(
    session: AsyncSession, catalog_name: str | None, schema_name: str | None
) -> list[VolumeView]:
    """The volumes of one schema, by name."""
    if not catalog_name or not schema_name:
        raise InvalidParameterValue("catalog_name and schema_name are required.")
    catalog, schema = await get_schema(session, f"{catalog_name}.{schema_name}")
    rows = await session.scalars(
        select(VolumeRow).where(VolumeRow.schema_id == schema.id).order_by(VolumeRow.name)
    )
    return [VolumeView(catalog, schema, row) for row in rows]


async def create_volume(
    session: AsyncSession,
    storage: Storage,
    caller: Principal,
    catalog_name: str | None,
    schema_name: str | None,
    name: str | None,
    volume_type: str | None,
    *,
    storage_location: str | None = None,
    comment: str | None = None,
) -> VolumeView:
    """Create a volume owned by the caller, with its (empty) folder."""
    if not catalog_name or not schema_name:
        raise InvalidParameterValue("catalog_name and schema_name are required.")
    key = validate_name("volume", name)
    kind = (volume_type or "").upper()
    if kind not in (MANAGED, EXTERNAL):
        raise InvalidParameterValue(
            f"Invalid volume_type {volume_type!r}: expected MANAGED or EXTERNAL."
        )
    catalog, schema = await get_schema(session, f"{catalog_name}.{schema_name}")
    full_name = f"{catalog.name}.{schema.name}.{key}"
    taken = await session.scalar(
        select(VolumeRow.id).where(VolumeRow.schema_id == schema.id, VolumeRow.name == key)
    )
    if taken is not None:
        raise ResourceAlreadyExists(f"Volume '{full_name}' already exists.")
    if kind == MANAGED:
        if storage_location:
            raise InvalidParameterValue("A MANAGED volume takes no storage_location.")
        path = f"{VOLUMES_MOUNT}/{catalog.name}/{schema.name}/{key}"
    else:
        if not storage_location:
            raise InvalidParameterValue("An EXTERNAL volume needs a storage_location.")
        path = storage.dbfs_path(storage_location, what="storage_location")
    await check_free_location(session, path)
    row = VolumeRow(
        id=str(uuid.uuid4()),
        schema_id=schema.id,
        name=key,
        volume_type=kind,
        storage_location=path,
        comment=comment,
        owner=caller.user_name,
        created_by=caller.user_name,
        created_at=now_utc(),
    )
    session.add(row)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise ResourceAlreadyExists(f"Volume '{full_name}' already exists.") from exc
    await asyncio.to_thread(storage.make_dirs, path)
    return VolumeView(catalog, schema, row)


async def update_volume(
    session: AsyncSession,
    storage: Storage,
    caller: Principal,
    full_name: str,
    *,
    new_name: str | None = None,
    comment: str | None = None,
    owner: str | None = None,
) -> VolumeView:
    """Rename a volume or change its comment or owner (its owner or an admin)."""
    view = await get_volume(session, full_name)
    require_owner(caller, view.row.owner, f"volume '{view.full_name}'")
    if new_name is not None:
        new = validate_name("volume", new_name)
        taken = await session.scalar(
            select(VolumeRow.id).where(VolumeRow.schema_id == view.schema.id, VolumeRow.name == new)
        )
        if new != view.row.name and taken is not None:
            raise ResourceAlreadyExists(
                f"Volume '{view.catalog.name}.{view.schema.name}.{new}' already exists."
            )
        if view.row.volume_type == MANAGED and new != view.row.name:
            old_path = view.row.storage_location
            new_path = f"{VOLUMES_MOUNT}/{view.catalog.name}/{view.schema.name}/{new}"
            await check_free_location(session, new_path)
            await asyncio.to_thread(storage.move, old_path, new_path)
            view.row.storage_location = new_path
        view.row.name = new
    if comment is not None:
        view.row.comment = comment
    if owner is not None:
        if not owner.strip():
            raise InvalidParameterValue("owner must not be empty.")
        view.row.owner = owner
    view.row.updated_by = caller.user_name
    view.row.updated_at = now_utc()
    await session.flush()
    return view


async def delete_volume(session: AsyncSession, caller: Principal, full_name: str) -> str | None:
    """Delete a volume (its owner or an admin); the DBFS path to remove if MANAGED."""
    view = await get_volume(session, full_name)
    require_owner(caller, view.row.owner, f"volume '{view.full_name}'")
    await session.delete(view.row)
    await session.flush()
    return view.row.storage_location if view.row.volume_type == MANAGED else None
