"""The two filesystems `dbutils.fs` works over: DBFS (through the DBFS API) and the driver's
local disk (`file:/`). Both offer the same few operations, so copy and move work across them.
"""

from __future__ import annotations

import base64
import os
import shutil
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

from kiln.driver.dbutils.api import ApiClient
from kiln.driver.dbutils.errors import ApiError, ExecutionError

__all__ = ["CHUNK", "DbfsStore", "Entry", "LocalStore", "Store"]

# The DBFS API reads and takes blocks of at most 1 MB.
CHUNK = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Entry:
    """A file or directory: its clean absolute path in its store."""

    path: str
    is_dir: bool
    size: int
    mtime_ms: int


class Store(Protocol):
    """One filesystem (paths are clean absolute paths)."""

    scheme: str

    def stat(self, path: str) -> Entry | None:
        """The entry at `path`, or None."""
        ...

    def list(self, path: str) -> list[Entry]:
        """A directory's children (or the file itself), sorted by path."""
        ...

    def mkdirs(self, path: str) -> None:
        """Create a directory and its parents."""
        ...

    def delete(self, path: str, recursive: bool) -> None:
        """Delete a file or a directory."""
        ...

    def read(self, path: str, limit: int | None = None) -> Iterator[bytes]:
        """The file's bytes in chunks (at most `limit` bytes)."""
        ...

    def write(self, path: str, chunks: Iterable[bytes], overwrite: bool) -> int:
        """Write a file from chunks; the number of bytes written."""
        ...

    def rename(self, source: str, destination: str) -> None:
        """Move within this store (the destination does not exist)."""
        ...


def _not_found(scheme: str, path: str) -> ExecutionError:
    return ExecutionError(f"java.io.FileNotFoundException: File {scheme}:{path} does not exist.")


class DbfsStore:
    """DBFS through the control plane's DBFS API 2.0."""

    scheme = "dbfs"

    def __init__(self, api: ApiClient) -> None:
        self.api = api

    def _entry(self, info: dict[str, object]) -> Entry:
        size = info.get("file_size") or 0
        mtime = info.get("modification_time") or 0
        return Entry(
            path=str(info["path"]),
            is_dir=bool(info.get("is_dir")),
            size=int(size) if isinstance(size, int) else 0,
            mtime_ms=int(mtime) if isinstance(mtime, int) else 0,
        )

    def stat(self, path: str) -> Entry | None:
        """The entry at `path`, or None."""
        try:
            return self._entry(self.api.get("/api/2.0/dbfs/get-status", {"path": path}))
        except ApiError as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                return None
            raise

    def list(self, path: str) -> list[Entry]:
        """A directory's children (or the file itself), sorted by path."""
        try:
            body = self.api.get("/api/2.0/dbfs/list", {"path": path})
        except ApiError as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                raise _not_found(self.scheme, path) from None
            raise
        files = body.get("files") or []
        return sorted((self._entry(f) for f in files), key=lambda e: e.path)

    def mkdirs(self, path: str) -> None:
        """Create a directory and its parents."""
        self.api.post("/api/2.0/dbfs/mkdirs", {"path": path})

    def delete(self, path: str, recursive: bool) -> None:
        """Delete a file or a directory."""
        self.api.post("/api/2.0/dbfs/delete", {"path": path, "recursive": recursive})

    def read(self, path: str, limit: int | None = None) -> Iterator[bytes]:
        """The file's bytes in 1 MB chunks (at most `limit` bytes)."""
        offset = 0
        while limit is None or offset < limit:
            length = CHUNK if limit is None else min(CHUNK, limit - offset)
            try:
                body = self.api.get(
                    "/api/2.0/dbfs/read", {"path": path, "offset": offset, "length": length}
                )
            except ApiError as exc:
                if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                    raise _not_found(self.scheme, path) from None
                raise
            data = base64.b64decode(str(body.get("data") or ""))
            if not data:
                return
            yield data
            offset += len(data)
            if len(data) < length:
                return

    def write(self, path: str, chunks: Iterable[bytes], overwrite: bool) -> int:
        """Write a file from chunks through a DBFS handle; the number of bytes written."""
        handle = self.api.post("/api/2.0/dbfs/create", {"path": path, "overwrite": overwrite})
        written = 0
        for chunk in _rechunk(chunks):
            data = base64.b64encode(chunk).decode()
            self.api.post("/api/2.0/dbfs/add-block", {"handle": handle["handle"], "data": data})
            written += len(chunk)
        self.api.post("/api/2.0/dbfs/close", {"handle": handle["handle"]})
        return written

    def put(self, path: str, data: bytes, overwrite: bool) -> None:
        """Write a small file (at most 1 MB) in one request."""
        contents = base64.b64encode(data).decode()
        self.api.post(
            "/api/2.0/dbfs/put", {"path": path, "contents": contents, "overwrite": overwrite}
        )

    def rename(self, source: str, destination: str) -> None:
        """Move within DBFS."""
        self.api.post(
            "/api/2.0/dbfs/move", {"source_path": source, "destination_path": destination}
        )


def _rechunk(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The same bytes in blocks of at most 1 MB (the DBFS API's block limit)."""
    for chunk in chunks:
        for start in range(0, len(chunk), CHUNK):
            yield chunk[start : start + CHUNK]


class LocalStore:
    """The driver's local disk (`file:/`)."""

    scheme = "file"

    def _entry(self, path: str, st: os.stat_result) -> Entry:
        is_dir = stat.S_ISDIR(st.st_mode)
        return Entry(path, is_dir, 0 if is_dir else st.st_size, int(st.st_mtime * 1000))

    def stat(self, path: str) -> Entry | None:
        """The entry at `path`, or None."""
        try:
            return self._entry(path, os.stat(path))
        except (FileNotFoundError, NotADirectoryError):
            return None

    def list(self, path: str) -> list[Entry]:
        """A directory's children (or the file itself), sorted by path."""
        entry = self.stat(path)
        if entry is None:
            raise _not_found(self.scheme, path)
        if not entry.is_dir:
            return [entry]
        found = []
        with os.scandir(path) as it:
            for d in it:
                try:
                    found.append(self._entry(os.path.join(path, d.name), d.stat()))
                except OSError:
                    continue  # a dangling link
        return sorted(found, key=lambda e: e.path)

    def mkdirs(self, path: str) -> None:
        """Create a directory and its parents."""
        try:
            os.makedirs(path, exist_ok=True)
        except FileExistsError:
            raise ExecutionError(
                f"java.io.IOException: Cannot create directory file:{path}: a file is in the way."
            ) from None

    def delete(self, path: str, recursive: bool) -> None:
        """Delete a file or a directory."""
        if os.path.isdir(path) and not os.path.islink(path):
            if recursive:
                shutil.rmtree(path)
            else:
                os.rmdir(path)
        else:
            os.unlink(path)

    def read(self, path: str, limit: int | None = None) -> Iterator[bytes]:
        """The file's bytes in chunks (at most `limit` bytes)."""
        try:
            f = open(path, "rb")  # noqa: SIM115 - closed by the generator below
        except FileNotFoundError:
            raise _not_found(self.scheme, path) from None
        with f:
            left = limit
            while left is None or left > 0:
                data = f.read(CHUNK if left is None else min(CHUNK, left))
                if not data:
                    return
                if left is not None:
                    left -= len(data)
                yield data

    def write(self, path: str, chunks: Iterable[bytes], overwrite: bool) -> int:
        """Write a file from chunks (atomically replaced); the number of bytes written."""
        if not overwrite and os.path.lexists(path):
            raise ExecutionError(
                f"java.nio.file.FileAlreadyExistsException: file:{path} already exists."
            )
        os.makedirs(os.path.dirname(path) or "/", exist_ok=True)
        tmp = f"{path}.kiln-{os.getpid()}.tmp"
        written = 0
        try:
            with open(tmp, "wb") as out:
                for chunk in chunks:
                    out.write(chunk)
                    written += len(chunk)
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        return written

    def rename(self, source: str, destination: str) -> None:
        """Move within the local disk."""
        os.makedirs(os.path.dirname(destination) or "/", exist_ok=True)
        shutil.move(source, destination)
