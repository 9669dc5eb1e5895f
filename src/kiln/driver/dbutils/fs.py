"""`dbutils.fs`: files on DBFS (`dbfs:/...`, or a bare `/...`) and on the driver (`file:/...`).

Results have Databricks' shapes: `FileInfo(path, name, size, modificationTime)` with a trailing
`/` on directories, `MountInfo(mountPoint, source, encryptionType)`; both are the named tuples
databricks-sdk's remote dbutils returns, so code moves between the two unchanged.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Iterator

from kiln.driver.dbutils.api import ApiClient
from kiln.driver.dbutils.errors import ExecutionError
from kiln.driver.dbutils.help import Helpful
from kiln.driver.dbutils.stores import CHUNK, DbfsStore, Entry, LocalStore, Store
from kiln.errors import KilnError
from kiln.paths import normalize_absolute_path

__all__ = ["FileInfo", "FsUtils", "MountInfo", "parse_fs_path"]


class FileInfo(namedtuple("FileInfo", ["path", "name", "size", "modificationTime"])):
    """One entry of `dbutils.fs.ls`."""

    __slots__ = ()

    def isDir(self) -> bool:
        """Whether the entry is a directory."""
        return bool(self.name.endswith("/"))

    def isFile(self) -> bool:
        """Whether the entry is a file."""
        return not self.isDir()


class MountInfo(namedtuple("MountInfo", ["mountPoint", "source", "encryptionType"])):
    """One entry of `dbutils.fs.mounts`."""

    __slots__ = ()


def parse_fs_path(raw: object) -> tuple[str, str]:
    """(`dbfs` or `file`, clean absolute path) of a dbutils.fs path; other schemes refused."""
    if not isinstance(raw, str) or not raw:
        raise ExecutionError(f"java.lang.IllegalArgumentException: Bad path {raw!r}.")
    scheme, rest = "dbfs", raw
    head, sep, tail = raw.partition(":")
    if sep and "/" not in head:
        scheme = head.lower()
        if scheme not in ("dbfs", "file"):
            raise ExecutionError(
                f"java.io.IOException: No FileSystem for scheme {head!r} in {raw!r}: Kiln's "
                "dbutils.fs reads dbfs:/ and file:/ paths."
            )
        rest = "/" + tail.lstrip("/")
    try:
        return scheme, normalize_absolute_path(rest)
    except KilnError as exc:
        raise ExecutionError(f"java.lang.IllegalArgumentException: {exc.message}") from None


def _name(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1]


def _join(parent: str, name: str) -> str:
    return f"{parent.rstrip('/')}/{name}"


def _file_info(scheme: str, entry: Entry) -> FileInfo:
    suffix = "/" if entry.is_dir and entry.path != "/" else ""
    return FileInfo(
        f"{scheme}:{entry.path}{suffix}", _name(entry.path) + suffix, entry.size, entry.mtime_ms
    )


class FsUtils(Helpful):
    """Manipulates the Databricks filesystem (DBFS) and the driver's local files."""

    _TITLE = "dbutils.fs"
    _INTRO = (
        "utilities for working with FileSystems. Methods take a DBFS path ('/foo' or "
        "'dbfs:/foo') or a driver-local path ('file:/foo'); `/dbfs/...` reaches DBFS from "
        "plain Python file APIs."
    )
    _HELP = ("cp", "head", "ls", "mkdirs", "mounts", "mv", "put", "refreshMounts", "rm")

    def __init__(self, api: ApiClient) -> None:
        self._dbfs = DbfsStore(api)
        self._local = LocalStore()

    def _store(self, raw: object) -> tuple[Store, str]:
        scheme, path = parse_fs_path(raw)
        return (self._dbfs if scheme == "dbfs" else self._local), path

    def ls(self, dir: str) -> list[FileInfo]:
        """Lists the contents of a directory."""
        store, path = self._store(dir)
        return [_file_info(store.scheme, e) for e in store.list(path)]

    def head(self, file: str, maxBytes: int = 65536) -> str:
        """Returns up to the first 'maxBytes' bytes of the given file as a UTF-8 String."""
        if not isinstance(maxBytes, int) or maxBytes < 0:
            raise ExecutionError("java.lang.IllegalArgumentException: maxBytes must be >= 0.")
        store, path = self._store(file)
        entry = store.stat(path)
        if entry is None:
            raise ExecutionError(
                f"java.io.FileNotFoundException: File {store.scheme}:{path} does not exist."
            )
        if entry.is_dir:
            raise ExecutionError(
                f"java.lang.IllegalArgumentException: Cannot head a directory: {file}"
            )
        data = b"".join(store.read(path, maxBytes))
        if entry.size > maxBytes:
            print(f"[Truncated to first {maxBytes} bytes]")
        return data.decode("utf-8", errors="replace")

    def put(self, file: str, contents: str, overwrite: bool = False) -> bool:
        """Writes the given String out to a file, encoded in UTF-8."""
        if not isinstance(contents, str):
            raise ExecutionError("java.lang.IllegalArgumentException: contents must be a str.")
        store, path = self._store(file)
        data = contents.encode("utf-8")
        if isinstance(store, DbfsStore) and len(data) <= CHUNK:
            store.put(path, data, overwrite)
        else:
            store.write(path, [data], overwrite)
        print(f"Wrote {len(data)} bytes.")
        return True

    def mkdirs(self, dir: str) -> bool:
        """Creates the given directory if it does not exist, and any missing parents."""
        store, path = self._store(dir)
        store.mkdirs(path)
        return True

    def rm(self, dir: str, recurse: bool = False) -> bool:
        """Removes a file or directory (a non-empty directory only with recurse=True)."""
        store, path = self._store(dir)
        entry = store.stat(path)
        if entry is None:
            return False
        if path == "/":
            raise ExecutionError("java.io.IOException: Cannot delete the root directory.")
        if entry.is_dir and not recurse and store.list(path):
            raise ExecutionError(
                f"java.io.IOException: Path {store.scheme}:{path} is a non-empty directory; "
                "use recurse=True to delete it."
            )
        store.delete(path, recurse)
        return True

    def cp(self, from_: str, to: str, recurse: bool = False) -> bool:
        """Copies a file or directory, possibly across FileSystems."""
        self._transfer(from_, to, recurse, move=False)
        return True

    def mv(self, from_: str, to: str, recurse: bool = False) -> bool:
        """Moves a file or directory, possibly across FileSystems."""
        self._transfer(from_, to, recurse, move=True)
        return True

    def mounts(self) -> list[MountInfo]:
        """Displays information about what is mounted within DBFS."""
        return [
            MountInfo("/", "DatabricksRoot", ""),
            MountInfo("/Volumes", "UnityCatalogVolumes", ""),
        ]

    def refreshMounts(self) -> bool:
        """Forces the cluster to refresh its mount cache (Kiln has none to refresh)."""
        return True

    def mount(self, source: str, mount_point: str, *args: object, **kwargs: object) -> bool:
        """Mounts are not offered: Kiln's DBFS is one store; use dbfs:/ or /Volumes paths."""
        raise ExecutionError(
            "java.lang.UnsupportedOperationException: Kiln has no mounts; use dbfs:/ or /Volumes "
            "paths."
        )

    def unmount(self, mount_point: str) -> bool:
        """Mounts are not offered (see mount)."""
        raise ExecutionError(
            f"java.lang.IllegalArgumentException: Directory not mounted: {mount_point}"
        )

    # -- copy and move ---------------------------------------------------------------------------

    def _transfer(self, source: str, target: str, recurse: bool, move: bool) -> None:
        src_store, src = self._store(source)
        dst_store, dst = self._store(target)
        entry = src_store.stat(src)
        if entry is None:
            raise ExecutionError(f"java.io.FileNotFoundException: File {source} does not exist.")
        if entry.is_dir and not recurse:
            verb = "move" if move else "copy"
            raise ExecutionError(
                f"java.io.IOException: {source} is a directory; use recurse=True to {verb} it."
            )
        existing = dst_store.stat(dst)
        if existing is not None and existing.is_dir:
            # Hadoop's rule: into an existing directory, under the source's name.
            dst = _join(dst, _name(src))
        same = src_store is dst_store
        if same and (dst == src or dst.startswith(src.rstrip("/") + "/")):
            verb = "move" if move else "copy"
            raise ExecutionError(
                f"java.io.IOException: Cannot {verb} {source} onto or into itself."
            )
        if move and same:
            if dst_store.stat(dst) is not None:
                dst_store.delete(dst, recursive=True)
            dst_store.rename(src, dst)
            return
        for item, rel in self._walk(src_store, entry):
            where = _join(dst, rel) if rel else dst
            if item.is_dir:
                dst_store.mkdirs(where)  # empty directories arrive too
            else:
                dst_store.write(where, src_store.read(item.path), True)
        if move:
            src_store.delete(src, recursive=True)

    def _walk(self, store: Store, top: Entry) -> Iterator[tuple[Entry, str]]:
        """`top` and everything under it, parents first, with paths relative to `top`."""
        yield top, ""
        if not top.is_dir:
            return
        stack = [top.path]
        while stack:
            folder = stack.pop()
            for child in store.list(folder):
                yield child, child.path[len(top.path.rstrip("/")) + 1 :]
                if child.is_dir:
                    stack.append(child.path)
