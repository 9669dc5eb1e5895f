"""DBFS API 2.0 (/api/2.0/dbfs/...): put, streaming handles, read, list, status, mkdirs,
delete and move. Paths arrive as `/x` or `dbfs:/x`.
"""

from __future__ import annotations

import contextlib
import functools
from typing import Any

from fastapi import APIRouter, Request, Response

from kiln.dbfs import files, forms, handles
from kiln.dbfs.paths import dbfs_path
from kiln.server.deps import CurrentPrincipal, Session, State
from kiln.server.schemas.dbfs import (
    AddBlockRequest,
    CloseRequest,
    CreateRequest,
    CreateResponse,
    DeleteRequest,
    FileInfo,
    ListStatusResponse,
    MkdirsRequest,
    MoveRequest,
    PutRequest,
    decode_block,
    parse_model,
    read_model,
    read_response_body,
)

router = APIRouter(tags=["dbfs"])

PREFIX = "/api/2.0/dbfs"
# Databricks' default `read` length when the client names none.
DEFAULT_READ_LENGTH = 512 * 1024


@router.post(f"{PREFIX}/put")
async def put(request: Request, state: State, _: CurrentPrincipal) -> dict[str, Any]:
    """Write a file: inline base64 `contents` (≤ 1 MB) or a multipart form with the file."""
    limits = state.settings.limits
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        body = await read_model(request, PutRequest, limits.json_body)
        data = decode_block(body.contents or "", limits.dbfs_block, what="contents")
        await files.put_bytes(state.dbfs, dbfs_path(body.path), data, overwrite=body.overwrite)
        return {}
    form = await forms.receive_put_form(
        state.dbfs, content_type, request.stream(), field_limit=limits.json_body
    )
    staged = form.staged
    try:
        fields = parse_model(PutRequest, form.fields)
        path = dbfs_path(fields.path)
        if staged is None:
            data = decode_block(fields.contents or "", limits.dbfs_block, what="contents")
            await files.put_bytes(state.dbfs, path, data, overwrite=fields.overwrite)
        else:
            await files.publish_staged(
                state.dbfs, staged.location, path, overwrite=fields.overwrite
            )
            staged = None
    finally:
        if staged is not None:
            with contextlib.suppress(Exception):
                await staged.discard()
    return {}


@router.post(f"{PREFIX}/create")
async def create(
    body: CreateRequest, state: State, session: Session, me: CurrentPrincipal
) -> CreateResponse:
    """Open a streaming handle to write a file."""
    handle = await handles.create_handle(
        session, state.dbfs, me.user_id, dbfs_path(body.path), overwrite=body.overwrite
    )
    return CreateResponse(handle=handle)


@router.post(f"{PREFIX}/add-block")
async def add_block(
    request: Request, state: State, session: Session, me: CurrentPrincipal
) -> dict[str, Any]:
    """Append a base64 block (≤ 1 MB) to an open handle."""
    limits = state.settings.limits
    # Parsed by pydantic straight from the bytes: several times faster than json.loads on the
    # 1.4 MB string every block carries, and add-block is the SDK's whole upload path.
    body = await read_model(request, AddBlockRequest, limits.json_body)
    data = decode_block(body.data, limits.dbfs_block)
    await handles.add_block(
        session,
        state.dbfs,
        me.user_id,
        body.handle,
        functools.partial(bytes, data),
        size=len(data),
        max_block=limits.dbfs_block,
    )
    return {}


@router.post(f"{PREFIX}/close")
async def close(
    body: CloseRequest, state: State, session: Session, me: CurrentPrincipal
) -> dict[str, Any]:
    """Close a handle: its file appears at its path."""
    await handles.close_handle(session, state.dbfs, me.user_id, body.handle)
    return {}


@router.get(f"{PREFIX}/read")
async def read(
    state: State,
    _: CurrentPrincipal,
    path: str,
    offset: int = 0,
    length: int = DEFAULT_READ_LENGTH,
) -> Response:
    """Up to 1 MB of a file from `offset`, base64-encoded."""
    body = await files.read_block(
        state.dbfs,
        dbfs_path(path),
        offset=offset,
        length=length,
        max_length=state.settings.limits.dbfs_read,
        encode=read_response_body,
    )
    return Response(body, media_type="application/json")


@router.get(f"{PREFIX}/list")
async def list_files(state: State, _: CurrentPrincipal, path: str) -> ListStatusResponse:
    """A directory's children, or the file itself."""
    entries = await files.list_status(state.dbfs, dbfs_path(path))
    return ListStatusResponse(files=[FileInfo.of(e) for e in entries])


@router.get(f"{PREFIX}/get-status")
async def get_status(state: State, _: CurrentPrincipal, path: str) -> FileInfo:
    """A file's or directory's status."""
    return FileInfo.of(await files.get_status(state.dbfs, dbfs_path(path)))


@router.post(f"{PREFIX}/mkdirs")
async def mkdirs(body: MkdirsRequest, state: State, _: CurrentPrincipal) -> dict[str, Any]:
    """Create a directory and its parents."""
    await files.mkdirs(state.dbfs, dbfs_path(body.path))
    return {}


@router.post(f"{PREFIX}/delete")
async def delete(body: DeleteRequest, state: State, _: CurrentPrincipal) -> dict[str, Any]:
    """Delete a file or a directory (a non-empty one only with `recursive`)."""
    await files.delete(state.dbfs, dbfs_path(body.path), recursive=body.recursive)
    return {}


@router.post(f"{PREFIX}/move")
async def move(body: MoveRequest, state: State, _: CurrentPrincipal) -> dict[str, Any]:
    """Move a file or a directory."""
    source = dbfs_path(body.source_path, what="source_path")
    destination = dbfs_path(body.destination_path, what="destination_path")
    await files.move(state.dbfs, source, destination)
    return {}
