"""Workspace API 2.0 wire shapes (`ObjectInfo`, `ListResponse`, `ExportResponse`, requests)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from kiln.store.models import WorkspaceObject, to_epoch_ms
from kiln.workspace import ImportFormat, Language, ObjectType

__all__ = [
    "DeleteRequest",
    "ExportResponse",
    "ImportRequest",
    "ListResponse",
    "MkdirsRequest",
    "ObjectInfo",
]


class ObjectInfo(BaseModel):
    """One workspace object, as `list` and `get-status` return it."""

    path: str
    object_type: ObjectType
    object_id: int
    resource_id: str
    language: Language | None = None
    created_at: int | None = None
    modified_at: int | None = None
    size: int | None = None

    @classmethod
    def of(cls, row: WorkspaceObject) -> ObjectInfo:
        """The wire view of a stored object (size and language only where they apply)."""
        object_type = ObjectType(row.object_type)
        is_folder = object_type == ObjectType.DIRECTORY
        return cls(
            path=row.path,
            object_type=object_type,
            object_id=row.id,
            resource_id=str(row.id),
            language=Language(row.language) if row.language else None,
            created_at=to_epoch_ms(row.created_at),
            modified_at=to_epoch_ms(row.modified_at),
            size=None if is_folder else row.size,
        )


class ListResponse(BaseModel):
    """`workspace/list`: Databricks omits `objects` for an empty folder."""

    objects: list[ObjectInfo] | None = None


class ExportResponse(BaseModel):
    content: str
    file_type: str


class MkdirsRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    path: str


class DeleteRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    path: str
    recursive: bool = False


class ImportRequest(BaseModel):
    """`workspace/import` as JSON (`content` base64) or a multipart form (`content` a file)."""

    model_config = ConfigDict(extra="ignore")

    path: str
    content: str | bytes | None = None
    format: ImportFormat = ImportFormat.SOURCE
    language: Language | None = None
    overwrite: bool = False
