"""Files API (/api/2.0/fs/files/..., /api/2.0/fs/directories/...) and the upload handshake.

Files API paths live in the DBFS root. databricks-sdk uploads files of 50 MB and more as a
multipart session: `POST ?action=initiate-upload`, then `POST /api/2.0/fs/create-upload-part-urls`
for each part's URL, a PUT of each part to that URL, and `POST ?action=complete-upload`. Kiln
serves those part URLs itself, on the file's own path (`PUT ?upload_type=multipart&...`), and
hands back the caller's own `Authorization` header with them, since the SDK sends part uploads
without its credentials.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from kiln.catalog import volumes as catalog_volumes
from kiln.dbfs import Entry, conditions, files, streams, uploads
from kiln.dbfs.paths import files_path
from kiln.errors import InvalidParameterValue
from kiln.server.deps import CurrentPrincipal, Session, State
from kiln.server.schemas.dbfs import read_model
from kiln.server.schemas.files import (
    AbortUploadUrlResponse,
    CompleteUploadRequest,
    CreateAbortUploadUrlRequest,
    CreateDownloadUrlRequest,
    CreateUploadPartUrlsRequest,
    DirectoryEntry,
    HttpHeader,
    InitiateUploadResponse,
    ListDirectoryResponse,
    MultipartUploadSession,
    PresignedUrl,
    UploadPartUrlsResponse,
)
from kiln.server.state import AppState

router = APIRouter(tags=["files"])

FILES = "/api/2.0/fs/files"
DIRECTORIES = "/api/2.0/fs/directories"
MAX_URLS_PER_REQUEST = 1000


def _url_path(captured: str) -> str:
    # The route captures what follows `/files/`; the client's path is `/` + that, so a URL
    # with `//` right after the prefix names `//...` and is refused, not quietly shortened.
    return files_path("/" + captured)


async def _path(state: AppState, captured: str) -> str:
    # Unity Catalog volumes: /Volumes/<catalog>/<schema>/<volume>/... is the volume's storage.
    path = _url_path(captured)
    if not catalog_volumes.is_volume_path(path):
        return path
    async with state.db.session() as session:
        return await catalog_volumes.files_path(session, path)


def _file_headers(entry: Entry) -> dict[str, str]:
    return {
        "Content-Type": "application/octet-stream",
        "Last-Modified": conditions.http_date(entry.mtime),
        "Accept-Ranges": "bytes",
    }


def _file_url(request: Request, path: str, **query: str | int) -> str:
    base = str(request.base_url).rstrip("/")
    url = f"{base}{FILES}{quote(path)}"
    return f"{url}?{urlencode(query)}" if query else url


def _auth_headers(request: Request) -> list[HttpHeader]:
    auth = request.headers.get("authorization")
    return [HttpHeader(name="Authorization", value=auth)] if auth else []


@router.put(FILES + "/{file_path:path}", status_code=204)
async def upload(
    file_path: str,
    request: Request,
    state: State,
    session: Session,
    me: CurrentPrincipal,
    overwrite: bool | None = None,
    upload_type: str | None = None,
    session_token: str | None = None,
    part_number: int | None = None,
) -> Response:
    """Write a file from the raw body, or store one part of a multipart upload."""
    path = await _path(state, file_path)
    if upload_type is None and session_token is None:
        await files.put_stream(state.dbfs, path, request.stream(), overwrite=overwrite is not False)
        return Response(status_code=204)
    if upload_type != "multipart":
        raise InvalidParameterValue(f"Unsupported upload_type {upload_type!r}; use multipart.")
    if not session_token or part_number is None:
        raise InvalidParameterValue("A part upload needs session_token and part_number.")
    etag = await uploads.upload_part(
        session, state.dbfs, me.user_id, path, session_token, part_number, request.stream()
    )
    return Response(status_code=200, headers={"ETag": f'"{etag}"'})


@router.post(FILES + "/{file_path:path}", response_model=None)
async def upload_action(
    file_path: str,
    request: Request,
    state: State,
    session: Session,
    me: CurrentPrincipal,
    action: str | None = None,
    overwrite: bool | None = None,
    session_token: str | None = None,
) -> InitiateUploadResponse | dict[str, Any]:
    """`action=initiate-upload` opens a multipart session; `complete-upload` finishes it."""
    path = await _path(state, file_path)
    if action == "initiate-upload":
        token = await uploads.initiate_upload(
            session, state.dbfs, me.user_id, path, overwrite=overwrite is not False
        )
        return InitiateUploadResponse(multipart_upload=MultipartUploadSession(session_token=token))
    if action == "complete-upload":
        if not session_token:
            raise InvalidParameterValue("complete-upload needs a session_token.")
        body = await read_model(request, CompleteUploadRequest, state.settings.limits.json_body)
        parts = [(p.part_number, p.etag) for p in body.parts]
        await uploads.complete_upload(session, state.dbfs, me.user_id, path, session_token, parts)
        return {}
    raise InvalidParameterValue(
        f"Unsupported action {action!r}; expected initiate-upload or complete-upload."
    )


@router.head(FILES + "/{file_path:path}")
async def file_metadata(file_path: str, state: State, _: CurrentPrincipal) -> Response:
    """A file's size, type and modification time, as headers."""
    entry = await files.file_status(state.dbfs, await _path(state, file_path))
    headers = _file_headers(entry) | {"Content-Length": str(entry.size)}
    return Response(status_code=200, headers=headers)


@router.get(FILES + "/{file_path:path}")
async def download(file_path: str, request: Request, state: State, _: CurrentPrincipal) -> Response:
    """A file's bytes, streamed; honors `Range` (206) and `If-Unmodified-Since` (412)."""
    path = await _path(state, file_path)
    f, entry = await streams.open_file(state.dbfs, path)
    try:
        conditions.check_unmodified_since(request.headers.get("if-unmodified-since"), entry.mtime)
        span = conditions.parse_range(request.headers.get("range"), entry.size)
    except conditions.RangeNotSatisfiable as exc:
        f.close()
        return JSONResponse(
            exc.to_body(), status_code=416, headers={"Content-Range": f"bytes */{entry.size}"}
        )
    except BaseException:
        f.close()
        raise
    headers = _file_headers(entry)
    start, length, status = 0, entry.size, 200
    if span is not None:
        start, length, status = span[0], span[1] - span[0] + 1, 206
        headers["Content-Range"] = f"bytes {span[0]}-{span[1]}/{entry.size}"
    headers["Content-Length"] = str(length)
    return StreamingResponse(
        streams.iter_open_file(f, start, length), status_code=status, headers=headers
    )


@router.delete(FILES + "/{file_path:path}", response_model=None)
async def delete_file(
    file_path: str,
    state: State,
    session: Session,
    me: CurrentPrincipal,
    action: str | None = None,
    session_token: str | None = None,
) -> Response | dict[str, Any]:
    """Delete a file, or (`action=abort-upload`) drop a multipart upload session."""
    path = await _path(state, file_path)
    if action == "abort-upload":
        if not session_token:
            raise InvalidParameterValue("abort-upload needs a session_token.")
        await uploads.abort_upload(session, state.dbfs, me.user_id, path, session_token)
        return {}
    if action is not None:
        raise InvalidParameterValue(f"Unsupported action {action!r}.")
    await files.delete_file(state.dbfs, path)
    return Response(status_code=204)


@router.put(DIRECTORIES + "/{directory_path:path}", status_code=204)
async def create_directory(directory_path: str, state: State, _: CurrentPrincipal) -> Response:
    """Create a directory and its parents (idempotent)."""
    await files.mkdirs(state.dbfs, await _path(state, directory_path))
    return Response(status_code=204)


@router.head(DIRECTORIES + "/{directory_path:path}")
async def directory_metadata(directory_path: str, state: State, _: CurrentPrincipal) -> Response:
    """200 if the directory exists."""
    await files.directory_status(state.dbfs, await _path(state, directory_path))
    return Response(status_code=200)


@router.get(DIRECTORIES + "/{directory_path:path}", response_model_exclude_none=True)
async def list_directory(
    directory_path: str,
    state: State,
    _: CurrentPrincipal,
    page_size: int | None = None,
    page_token: str | None = None,
) -> ListDirectoryResponse:
    """One page (≤ 1000 entries) of a directory's contents."""
    asked, stored = _url_path(directory_path), await _path(state, directory_path)
    entries, token = await files.list_directory(
        state.dbfs, stored, page_size=page_size, page_token=page_token
    )
    contents = [DirectoryEntry.of(e) for e in entries]
    for entry in contents:
        if entry.path and stored != asked:  # an external volume: show the /Volumes path
            entry.path = asked + entry.path[len(stored) :]
    return ListDirectoryResponse(contents=contents, next_page_token=token)


@router.delete(DIRECTORIES + "/{directory_path:path}", status_code=204)
async def delete_directory(directory_path: str, state: State, _: CurrentPrincipal) -> Response:
    """Delete an empty directory."""
    await files.delete_directory(state.dbfs, await _path(state, directory_path))
    return Response(status_code=204)


@router.post("/api/2.0/fs/create-upload-part-urls")
async def create_upload_part_urls(
    body: CreateUploadPartUrlsRequest,
    request: Request,
    session: Session,
    me: CurrentPrincipal,
) -> UploadPartUrlsResponse:
    """URLs (on Kiln itself) to PUT parts `start_part_number..+count-1` of an upload to."""
    path = files_path(body.path)
    await uploads.get_upload(session, me.user_id, path, body.session_token)
    last = body.start_part_number + body.count - 1
    if body.count < 1 or body.count > MAX_URLS_PER_REQUEST:
        raise InvalidParameterValue(f"count must be between 1 and {MAX_URLS_PER_REQUEST}.")
    if body.start_part_number < 1 or last > uploads.MAX_PART_NUMBER:
        raise InvalidParameterValue(
            f"Part numbers must be between 1 and {uploads.MAX_PART_NUMBER}."
        )
    headers = _auth_headers(request)
    urls = [
        PresignedUrl(
            url=_file_url(
                request,
                path,
                session_token=body.session_token,
                upload_type="multipart",
                part_number=number,
            ),
            headers=headers,
            part_number=number,
        )
        for number in range(body.start_part_number, last + 1)
    ]
    return UploadPartUrlsResponse(upload_part_urls=urls)


@router.post("/api/2.0/fs/create-abort-upload-url")
async def create_abort_upload_url(
    body: CreateAbortUploadUrlRequest,
    request: Request,
    session: Session,
    me: CurrentPrincipal,
) -> AbortUploadUrlResponse:
    """The URL (on Kiln itself) to DELETE to abort an upload."""
    path = files_path(body.path)
    await uploads.get_upload(session, me.user_id, path, body.session_token)
    url = _file_url(request, path, action="abort-upload", session_token=body.session_token)
    return AbortUploadUrlResponse(
        abort_upload_url=PresignedUrl(url=url, headers=_auth_headers(request))
    )


@router.post("/api/2.0/fs/create-download-url")
async def create_download_url(
    request: Request, state: State, _: CurrentPrincipal, path: str | None = None
) -> PresignedUrl:
    """The URL (on Kiln itself) to GET a file from; `path` in the query or the JSON body."""
    if path is None:
        path = (await read_model(request, CreateDownloadUrlRequest, 64 * 1024)).path
    clean = files_path(path)
    await files.file_status(state.dbfs, clean)
    return PresignedUrl(url=_file_url(request, clean), headers=_auth_headers(request))
