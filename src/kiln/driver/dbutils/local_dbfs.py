"""`/dbfs/...` paths for plain Python file APIs inside a context.

Databricks mounts DBFS at `/dbfs` with FUSE. Kiln cannot mount (no FUSE, no root), so each
context translates the paths instead: `open()`, `io.open`, and the `os` functions that
`os.path`, `pathlib`, `shutil` and `glob` are built on map `/dbfs/<p>` to `<root>/<p>`, where
`<root>` is the DBFS store's local directory on this machine (the local backend's default).
This covers Python code (pandas, csv, json, pickle, PIL...) in the context's process; code
that opens files from C (pyarrow's own filesystem, sqlite3) or in another process (Spark
tasks, `%sh`) does not see `/dbfs`; use `dbfs:/` paths with dbutils.fs there.

Paths are resolved lexically, may not climb out of `/dbfs`, and the DBFS store's staging area
(uploads in flight) is neither listed nor reachable, as through the DBFS API.
"""

from __future__ import annotations

import builtins
import errno
import io
import os
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["DBFS_MOUNT", "STAGING_DIR", "DbfsPaths"]

DBFS_MOUNT = "/dbfs"
# The DBFS store's staging folder (`kiln.dbfs.paths.STAGING_DIR`; a unit test keeps them equal).
STAGING_DIR = ".kiln-staging"

# os functions whose first argument is a path.
_ONE_PATH = (
    "open",
    "stat",
    "lstat",
    "mkdir",
    "rmdir",
    "remove",
    "unlink",
    "access",
    "chmod",
    "utime",
    "truncate",
    "readlink",
    "chdir",
)
# os functions whose first two arguments are paths.
_TWO_PATHS = ("rename", "replace", "link", "symlink")
_MARK = "__kiln_dbfs__"


class DbfsPaths:
    """Translation of `/dbfs/...` to the DBFS store's local directory, and its hooks."""

    def __init__(self, root: str) -> None:
        self.root = os.path.realpath(root)

    def local(self, path: Any) -> Any:
        """`path` with a `/dbfs` prefix mapped into the store; any other path unchanged."""
        if isinstance(path, int) or path is None:
            return path
        try:
            raw = os.fspath(path)
        except TypeError:
            return path
        text = os.fsdecode(raw)
        if text != DBFS_MOUNT and not text.startswith(DBFS_MOUNT + "/"):
            return path
        parts: list[str] = []
        for part in text[len(DBFS_MOUNT) :].split("/"):
            if part in ("", "."):
                continue
            if part == "..":
                if not parts:
                    raise PermissionError(errno.EACCES, "Path climbs out of /dbfs", text)
                parts.pop()
            else:
                parts.append(part)
        if parts and parts[0] == STAGING_DIR:
            raise PermissionError(errno.EACCES, "Path is reserved", text)
        local = os.path.join(self.root, *parts) if parts else self.root
        return os.fsencode(local) if isinstance(raw, bytes) else local

    def _is_root(self, path: Any) -> bool:
        try:
            return os.path.realpath(os.fsdecode(os.fspath(path))) == self.root
        except TypeError:
            return False

    # -- hooks -----------------------------------------------------------------------------------

    def install(self) -> None:
        """Route `open`, `io.open` and the path functions of `os` through `local` (once)."""
        if getattr(builtins.open, _MARK, None) is not None:
            return
        builtins.open = io.open = self._one(builtins.open)
        for name in _ONE_PATH:
            setattr(os, name, self._one(getattr(os, name)))
        for name in _TWO_PATHS:
            setattr(os, name, self._two(getattr(os, name)))
        os.listdir = self._listdir(os.listdir)
        os.scandir = self._scandir(os.scandir)

    def _mark(self, wrapper: Callable[..., Any], original: Callable[..., Any]) -> Any:
        setattr(wrapper, _MARK, original)
        wrapper.__name__ = getattr(original, "__name__", "wrapper")
        wrapper.__doc__ = original.__doc__
        return wrapper

    def _one(self, original: Callable[..., Any]) -> Any:
        local = self.local

        def wrapper(path: Any, *args: Any, **kwargs: Any) -> Any:
            return original(local(path), *args, **kwargs)

        return self._mark(wrapper, original)

    def _two(self, original: Callable[..., Any]) -> Any:
        local = self.local

        def wrapper(src: Any, dst: Any, *args: Any, **kwargs: Any) -> Any:
            return original(local(src), local(dst), *args, **kwargs)

        return self._mark(wrapper, original)

    def _listdir(self, original: Callable[..., Any]) -> Any:
        def wrapper(path: Any = ".") -> Any:
            translated = self.local(path)
            names = original(translated)
            if translated is not path and self._is_root(translated):
                names = [n for n in names if os.fsdecode(n) != STAGING_DIR]
            return names

        return self._mark(wrapper, original)

    def _scandir(self, original: Callable[..., Any]) -> Any:
        def wrapper(path: Any = ".") -> Any:
            translated = self.local(path)
            it = original(translated)
            if translated is path or not self._is_root(translated):
                return it
            return _Filtered(it)

        return self._mark(wrapper, original)


class _Filtered:
    """An `os.scandir` iterator over the DBFS root without the staging folder."""

    def __init__(self, it: Any) -> None:
        self._it = it

    def __iter__(self) -> Iterator[os.DirEntry[Any]]:
        for entry in self._it:
            if os.fsdecode(entry.name) != STAGING_DIR:
                yield entry

    def __enter__(self) -> _Filtered:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the underlying iterator."""
        self._it.close()
