"""DBFS's file store: an fsspec filesystem rooted at one URL (a local folder by default).

Every method takes a clean absolute client path (see `kiln.dbfs.paths`) and is blocking: the
services call them through `asyncio.to_thread`. On a local root each location is also resolved
through symlinks and refused if it lands outside the root, so a link planted under the root
cannot be used to read or write elsewhere.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import time
import uuid
from collections.abc import Hashable
from dataclasses import dataclass
from datetime import datetime
from typing import IO, TYPE_CHECKING, Any

import fsspec
from fsspec.spec import AbstractFileSystem

from kiln.dbfs.paths import STAGING_DIR, join, parent_of
from kiln.dbfs.readahead import ReadAhead
from kiln.errors import (
    BadRequest,
    InvalidParameterValue,
    ResourceAlreadyExists,
    ResourceDoesNotExist,
)

if TYPE_CHECKING:
    from kiln.dbfs.handles import OpenHandle

__all__ = ["DbfsStore", "Entry"]


@dataclass(frozen=True, slots=True)
class Entry:
    """One file or directory under the root, named by its client path."""

    path: str
    is_dir: bool
    size: int
    mtime: float  # seconds since the epoch

    @property
    def mtime_ms(self) -> int:
        """Databricks' wire form of the modification time."""
        return int(self.mtime * 1000)


def _info_mtime(info: dict[str, Any]) -> float:
    # Each fsspec backend names the modification time differently.
    for key in ("mtime", "LastModified", "last_modified", "updated", "modified", "created"):
        value = info.get(key)
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, datetime):
            return value.timestamp()
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    return 0.0


class DbfsStore:
    """The root every DBFS and Files API path is confined to."""

    def __init__(self, root_url: str) -> None:
        fs, root = fsspec.core.url_to_fs(root_url)
        self.fs: AbstractFileSystem = fs
        self.root: str = root.rstrip("/")
        protocols = (fs.protocol,) if isinstance(fs.protocol, str) else tuple(fs.protocol)
        self.is_local: bool = "file" in protocols or "local" in protocols
        self.staging_root: str = f"{self.root}/{STAGING_DIR}"
        # Open `dbfs/create` handles by id: add-block must not cost a database round trip.
        self.open_handles: dict[int, OpenHandle] = {}
        self.read_ahead = ReadAhead()
        # Handles created before this moment belong to an earlier server process.
        self.started_at = time.time()
        self._real_root = ""
        if self.is_local:
            os.makedirs(self.root or "/", exist_ok=True)
            os.makedirs(self.staging_root, exist_ok=True)
            self._real_root = os.path.realpath(self.root or "/")

    # -- locations -------------------------------------------------------------------------

    def location(self, path: str) -> str:
        """Where a clean client path lives in the filesystem (refused if it escapes the root)."""
        loc = self.root + path if path != "/" else (self.root or "/")
        if self.is_local:
            self._confine(loc)
        return loc

    def _confine(self, loc: str) -> None:
        real = os.path.realpath(loc)
        if real != self._real_root and not real.startswith(self._real_root.rstrip("/") + "/"):
            raise InvalidParameterValue("Path resolves outside the DBFS root.")

    def staging_location(self) -> str:
        """A fresh name in the staging area for an upload in flight."""
        return f"{self.staging_root}/{uuid.uuid4().hex}"

    # -- metadata --------------------------------------------------------------------------

    def stat(self, path: str) -> Entry | None:
        """The entry at `path`, or None if nothing is there."""
        loc = self.location(path)
        if self.is_local:
            try:
                st = os.stat(loc)
            except (FileNotFoundError, NotADirectoryError):
                return None
            is_dir = stat.S_ISDIR(st.st_mode)
            return Entry(path, is_dir, 0 if is_dir else st.st_size, st.st_mtime)
        try:
            info = self.fs.info(loc)
        except (FileNotFoundError, NotADirectoryError):
            return None
        is_dir = info.get("type") == "directory"
        return Entry(path, is_dir, 0 if is_dir else int(info.get("size") or 0), _info_mtime(info))

    def require(self, path: str) -> Entry:
        """The entry at `path`, or RESOURCE_DOES_NOT_EXIST."""
        entry = self.stat(path)
        if entry is None:
            raise ResourceDoesNotExist(f"No file or directory exists on path {path}.")
        return entry

    def identity(self, path: str) -> Hashable | None:
        """What changes whenever the file at `path` is replaced or written; None if absent."""
        loc = self.location(path)
        if self.is_local:
            try:
                st = os.stat(loc)
            except (FileNotFoundError, NotADirectoryError):
                return None
            return (st.st_ino, st.st_size, st.st_mtime_ns)
        entry = self.stat(path)
        return None if entry is None else (entry.size, entry.mtime)

    def listdir(self, path: str) -> list[Entry]:
        """The children of the directory `path`, sorted by name."""
        loc = self.location(path)
        entries: list[Entry] = []
        if self.is_local:
            with os.scandir(loc) as it:
                for d in it:
                    if path == "/" and d.name == STAGING_DIR:
                        continue
                    try:
                        if d.is_symlink():
                            self._confine(d.path)
                        st = d.stat()
                    except (OSError, InvalidParameterValue):
                        continue  # a dangling link or one pointing outside the root
                    is_dir = stat.S_ISDIR(st.st_mode)
                    size = 0 if is_dir else st.st_size
                    entries.append(Entry(join(path, d.name), is_dir, size, st.st_mtime))
        else:
            for info in self.fs.ls(loc, detail=True):
                name = str(info["name"]).rstrip("/").rsplit("/", 1)[-1]
                if (path == "/" and name == STAGING_DIR) or not name:
                    continue
                is_dir = info.get("type") == "directory"
                size = 0 if is_dir else int(info.get("size") or 0)
                entries.append(Entry(join(path, name), is_dir, size, _info_mtime(info)))
        entries.sort(key=lambda e: e.path)
        return entries

    # -- writes ----------------------------------------------------------------------------

    def makedirs(self, path: str) -> None:
        """Create `path` and its parents; a file anywhere on the way is RESOURCE_ALREADY_EXISTS."""
        prefix = ""
        for part in path.strip("/").split("/") if path != "/" else []:
            prefix = f"{prefix}/{part}"
            entry = self.stat(prefix)
            if entry is None:
                break
            if not entry.is_dir:
                raise ResourceAlreadyExists(
                    f"Cannot create directory {path}: a file exists at {prefix}."
                )
        self.fs.makedirs(self.location(path), exist_ok=True)

    def open_write(self, loc: str) -> IO[bytes]:
        """Open a staging location for writing."""
        if self.is_local:
            return open(loc, "wb")
        return self.fs.open(loc, "wb")  # type: ignore[no-any-return]

    def open_append(self, loc: str) -> IO[bytes]:
        """Open a staging location to append to it (created if missing)."""
        if self.is_local:
            return open(loc, "ab")
        # Object stores cannot append: rewrite the staged bytes, then carry on at the end.
        data = self.fs.cat_file(loc) if self.fs.exists(loc) else b""
        f: IO[bytes] = self.fs.open(loc, "wb")
        f.write(data)
        return f

    def open_read(self, path: str) -> IO[bytes]:
        """Open the file at `path` for reading."""
        loc = self.location(path)
        if self.is_local:
            return open(loc, "rb")
        return self.fs.open(loc, "rb")  # type: ignore[no-any-return]

    def check_target(self, path: str, *, overwrite: bool) -> None:
        """Refuse a file write at `path` over a directory, or over a file without overwrite."""
        if path == "/":
            raise InvalidParameterValue("Cannot write a file at the root directory.")
        entry = self.stat(path)
        if entry is not None and entry.is_dir:
            raise ResourceAlreadyExists(f"A directory already exists at {path}.")
        if entry is not None and not overwrite:
            raise ResourceAlreadyExists(f"A file or directory already exists at {path}.")

    def publish(self, staged: str, path: str, *, overwrite: bool) -> None:
        """Move a fully written staging file into place at `path` in one atomic step."""
        self.check_target(path, overwrite=overwrite)
        self.makedirs(parent_of(path))
        loc = self.location(path)
        if not self.is_local:
            self.fs.mv(staged, loc)
            return
        if overwrite:
            os.replace(staged, loc)
            return
        # link() fails if the name exists, so a racing writer cannot be overwritten.
        try:
            os.link(staged, loc)
        except FileExistsError:
            raise ResourceAlreadyExists(f"A file or directory already exists at {path}.") from None
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EXDEV, errno.EMLINK):
                raise
            os.replace(staged, loc)  # the filesystem has no hard links
            return
        os.unlink(staged)

    def remove(self, path: str, *, recursive: bool) -> bool:
        """Delete a file or a directory; False if nothing was there."""
        if path == "/":
            raise InvalidParameterValue("Cannot delete the root directory.")
        entry = self.stat(path)
        if entry is None:
            return False
        loc = self.location(path)
        if not entry.is_dir:
            if self.is_local:
                os.unlink(loc)
            else:
                self.fs.rm_file(loc)
            return True
        if not recursive and self.listdir(path):
            raise BadRequest(
                f"Cannot delete non-empty directory {path} without recursive=true.",
                error_code="IO_ERROR",
            )
        if self.is_local:
            # rmtree never follows symlinks, so a link to outside the root is unlinked, not walked.
            shutil.rmtree(loc)
        else:
            self.fs.rm(loc, recursive=True)
        return True

    def move(self, source: str, destination: str) -> None:
        """Rename a file or a directory (recursively); the destination must not exist."""
        if source == "/" or destination == "/":
            raise InvalidParameterValue("Cannot move the root directory.")
        self.require(source)
        if destination == source or destination.startswith(source + "/"):
            raise InvalidParameterValue(f"Cannot move {source} into itself ({destination}).")
        if self.stat(destination) is not None:
            raise ResourceAlreadyExists(f"A file or directory already exists at {destination}.")
        self.makedirs(parent_of(destination))
        src, dst = self.location(source), self.location(destination)
        if self.is_local:
            os.rename(src, dst)
        else:
            self.fs.mv(src, dst, recursive=True)

    def discard(self, loc: str) -> None:
        """Best-effort removal of a staging file or folder."""
        with contextlib.suppress(OSError):
            if self.is_local:
                if os.path.isdir(loc):
                    shutil.rmtree(loc)
                else:
                    os.unlink(loc)
            else:
                self.fs.rm(loc, recursive=True)
