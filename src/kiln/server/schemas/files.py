"""Files API wire shapes, including databricks-sdk's multipart upload handshake."""

from __future__ import annotations

from pydantic import BaseModel

from kiln.dbfs import Entry

__all__ = [
    "AbortUploadUrlResponse",
    "CompleteUploadRequest",
    "CompletedPart",
    "CreateAbortUploadUrlRequest",
    "CreateDownloadUrlRequest",
    "CreateUploadPartUrlsRequest",
    "DirectoryEntry",
    "HttpHeader",
    "InitiateUploadResponse",
    "ListDirectoryResponse",
    "MultipartUploadSession",
    "PresignedUrl",
    "UploadPartUrlsResponse",
]


class DirectoryEntry(BaseModel):
    path: str
    is_directory: bool
    file_size: int | None = None
    last_modified: int
    name: str

    @classmethod
    def of(cls, entry: Entry) -> DirectoryEntry:
        # Directories are listed with a trailing slash and no size, as Databricks does.
        return cls(
            path=entry.path + "/" if entry.is_dir else entry.path,
            is_directory=entry.is_dir,
            file_size=None if entry.is_dir else entry.size,
            last_modified=entry.mtime_ms,
            name=entry.path.rsplit("/", 1)[-1],
        )


class ListDirectoryResponse(BaseModel):
    contents: list[DirectoryEntry]
    next_page_token: str | None = None


class MultipartUploadSession(BaseModel):
    session_token: str


class InitiateUploadResponse(BaseModel):
    multipart_upload: MultipartUploadSession


class CompletedPart(BaseModel):
    part_number: int
    etag: str


class CompleteUploadRequest(BaseModel):
    parts: list[CompletedPart]


class HttpHeader(BaseModel):
    name: str
    value: str


class PresignedUrl(BaseModel):
    url: str
    headers: list[HttpHeader]
    part_number: int | None = None


class CreateUploadPartUrlsRequest(BaseModel):
    path: str
    session_token: str
    start_part_number: int
    count: int
    expire_time: str | None = None


class UploadPartUrlsResponse(BaseModel):
    upload_part_urls: list[PresignedUrl]


class CreateAbortUploadUrlRequest(BaseModel):
    path: str
    session_token: str
    expire_time: str | None = None


class AbortUploadUrlResponse(BaseModel):
    abort_upload_url: PresignedUrl


class CreateDownloadUrlRequest(BaseModel):
    path: str
    expire_time: str | None = None
