"""Workspace API 2.0 (/api/2.0/workspace/...): list, get-status, mkdirs, delete, import, export.

`import` takes JSON (base64 `content`; the legacy CLI's `text/json` arrives as JSON) or the
multipart form databricks-sdk's `workspace.upload` sends (`content` a raw file part).
`export` answers JSON (base64) or, with `direct_download=true`, the bytes themselves.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from kiln import workspace
from kiln.errors import BadRequest, InvalidParameterValue, MalformedRequest
from kiln.server.deps import CurrentPrincipal, Session, State
from kiln.server.schemas.workspace import (
    DeleteRequest,
    ExportResponse,
    ImportRequest,
    ListResponse,
    MkdirsRequest,
    ObjectInfo,
)
from kiln.workspace import ExportFormat, ImportSpec

router = APIRouter(tags=["workspace"])


@router.get("/api/2.0/workspace/get-status", response_model_exclude_none=True)
async def get_status(path: str, session: Session, me: CurrentPrincipal) -> ObjectInfo:
    """One object's metadata."""
    return ObjectInfo.of(await workspace.get_status(session, me, path))


@router.get("/api/2.0/workspace/list", response_model_exclude_none=True)
async def list_objects(
    path: str,
    session: Session,
    me: CurrentPrincipal,
    notebooks_modified_after: int | None = None,
) -> ListResponse:
    """A folder's children (or the object itself when it is not a folder)."""
    rows = await workspace.list_objects(
        session, me, path, notebooks_modified_after=notebooks_modified_after
    )
    return ListResponse(objects=[ObjectInfo.of(r) for r in rows] or None)


@router.post("/api/2.0/workspace/mkdirs")
async def mkdirs(body: MkdirsRequest, session: Session, me: CurrentPrincipal) -> dict[str, Any]:
    """Create a folder and its missing parents."""
    await workspace.mkdirs(session, me, body.path)
    return {}


@router.post("/api/2.0/workspace/delete")
async def delete(
    body: DeleteRequest, request: Request, session: Session, me: CurrentPrincipal
) -> dict[str, Any]:
    """Delete an object (a non-empty folder only with `recursive`), with experiments in it."""
    # Imported here: the ML area stays out of the workspace area's first request.
    from kiln.ml.experiment_objects import delete_workspace_path
    from kiln.server.routers.ml_deps import ml_services

    tracking = ml_services(request).tracking
    await delete_workspace_path(session, tracking, me, body.path, recursive=body.recursive)
    return {}


@router.post("/api/2.0/workspace/import")
async def import_object(
    request: Request, session: Session, state: State, me: CurrentPrincipal
) -> dict[str, Any]:
    """Import a notebook, file or archive (JSON with base64 content, or a multipart form)."""
    limit = state.settings.limits.workspace_import
    body = await _import_request(request)
    spec = ImportSpec(
        path=body.path,
        content=_content_bytes(body.content, limit),
        format=body.format,
        language=body.language,
        overwrite=body.overwrite,
    )
    await workspace.import_object(session, me, spec, max_size=limit)
    return {}


@router.get("/api/2.0/workspace/export", response_model=None)
async def export_object(
    path: str,
    session: Session,
    state: State,
    me: CurrentPrincipal,
    export_format: Annotated[ExportFormat, Query(alias="format")] = ExportFormat.SOURCE,
    direct_download: bool = False,
) -> ExportResponse | Response:
    """Export an object: base64 JSON, or the file itself with `direct_download=true`."""
    limit = None if direct_download else state.settings.limits.workspace_import
    exported = await workspace.export_object(session, me, path, export_format, max_size=limit)
    if direct_download:
        return Response(
            content=exported.content,
            media_type="application/octet-stream",
            headers={
                "Content-Disposition": f"attachment; filename*=UTF-8''{quote(exported.filename)}",
                "X-Content-Type-Options": "nosniff",
            },
        )
    return ExportResponse(
        content=base64.b64encode(exported.content).decode(), file_type=exported.file_type
    )


async def _import_request(request: Request) -> ImportRequest:
    """The import body from either framing, validated like any other request body."""
    fields: Any
    if request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        form = await request.form()
        fields = {}
        for key, value in form.multi_items():
            fields[key] = await value.read() if isinstance(value, UploadFile) else value
    else:
        raw = await request.body()
        try:
            fields = json.loads(raw) if raw.strip() else {}
        except ValueError as exc:
            raise MalformedRequest(f"Malformed JSON in request body: {exc}") from exc
        if not isinstance(fields, dict):
            raise MalformedRequest("The request body must be a JSON object.")
    try:
        return ImportRequest.model_validate(fields)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**err, "loc": ("body", *err["loc"])} for err in exc.errors(include_url=False)]
        ) from exc


def _content_bytes(content: str | bytes | None, limit: int) -> bytes:
    """A multipart part is the bytes; a JSON `content` is base64 (checked before decoding)."""
    if content is None:
        return b""
    if isinstance(content, bytes):
        return content
    compact = "".join(content.split())
    if len(compact) > (limit // 3 + 1) * 4:
        raise BadRequest(
            f"The import content exceeds the limit of {limit} bytes.",
            error_code="MAX_NOTEBOOK_SIZE_EXCEEDED",
        )
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidParameterValue("The content field is not valid base64.") from exc
