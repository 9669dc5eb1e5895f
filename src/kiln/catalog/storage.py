"""Where catalog data lives: DBFS paths, the URLs clients see, and the confinement rule.

Every table and volume location is a path inside the DBFS root (the only allowed storage),
kept in the store as a DBFS path (`/user/hive/warehouse/...`) and shown to clients as a URL
that plain Python (deltalake, pandas, polars, duckdb) opens directly: `file:///...` for a
local DBFS root, the root's own URL otherwise.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from kiln.errors import InvalidParameterValue
from kiln.paths import normalize_absolute_path

__all__ = ["WAREHOUSE", "Storage"]

# The metastore's storage root inside DBFS (Databricks' legacy warehouse path).
WAREHOUSE = "/user/hive/warehouse"
# DBFS' staging area for uploads in flight (kiln.dbfs.paths.STAGING_DIR): never a location.
_STAGING = "/.kiln-staging"
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


class Storage:
    """The DBFS root seen by the catalog: path ↔ URL mapping and confinement."""

    def __init__(self, root_url: str) -> None:
        self.root_url = root_url.rstrip("/")
        self.local_root: Path | None = None
        if not _SCHEME.match(self.root_url) or self.root_url.startswith("file:"):
            local = self.root_url.removeprefix("file://").removeprefix("file:")
            self.local_root = Path(local).expanduser().resolve()

    def url(self, dbfs_path: str) -> str:
        """The URL a client opens for a DBFS path."""
        if self.local_root is not None:
            return f"file://{self.local_root}{dbfs_path}"
        return f"{self.root_url}{dbfs_path}"

    def local_path(self, dbfs_path: str) -> Path | None:
        """The local filesystem path of a DBFS path (None for a remote root)."""
        return None if self.local_root is None else Path(f"{self.local_root}{dbfs_path}")

    def dbfs_path(self, location: str, *, what: str = "LOCATION") -> str:
        """The DBFS path a client-given location names, or a 400 when it lies outside DBFS."""
        raw = location.strip()
        if not raw:
            raise InvalidParameterValue(f"{what} must not be empty.")
        inner: str | None = None
        if raw.lower().startswith("dbfs:"):
            inner = "/" + raw[5:].lstrip("/")
        else:
            for prefix in self._root_prefixes():
                if raw == prefix or raw.startswith(prefix + "/"):
                    inner = raw[len(prefix) :] or "/"
                    break
            if inner is None and raw.startswith("/") and not raw.startswith("//"):
                # A path without a scheme is a DBFS path, as in Databricks' SQL.
                inner = raw
        if inner is None:
            raise InvalidParameterValue(
                f"{what} {location!r} is outside the allowed storage: use a dbfs:/ path (or a "
                f"path under {self.url('/')})."
            )
        path = normalize_absolute_path(inner, what=what)
        if path == "/" or path == _STAGING or path.startswith(_STAGING + "/"):
            raise InvalidParameterValue(f"{what} {location!r} is not an allowed location.")
        return path

    def _root_prefixes(self) -> list[str]:
        if self.local_root is None:
            return [self.root_url]
        root = str(self.local_root)
        return [f"file://{root}", f"file:{root}", root]

    def remove_tree(self, dbfs_path: str) -> None:
        """Delete a managed object's folder (blocking: call it in a thread)."""
        local = self.local_path(dbfs_path)
        if local is not None:
            shutil.rmtree(local, ignore_errors=True)
            return
        import fsspec

        fs, base = fsspec.core.url_to_fs(self.url(dbfs_path))
        if fs.exists(base):
            fs.rm(base, recursive=True)

    def move(self, source: str, target: str) -> None:
        """Move a folder (blocking)."""
        local_source, local_target = self.local_path(source), self.local_path(target)
        if local_source is not None and local_target is not None:
            local_target.parent.mkdir(parents=True, exist_ok=True)
            if local_source.exists():
                local_source.rename(local_target)
            return
        import fsspec

        fs, base = fsspec.core.url_to_fs(self.url(source))
        fs.mv(base, fsspec.core.url_to_fs(self.url(target))[1], recursive=True)

    def make_dirs(self, dbfs_path: str) -> None:
        """Create a folder (blocking)."""
        local = self.local_path(dbfs_path)
        if local is not None:
            local.mkdir(parents=True, exist_ok=True)
            return
        import fsspec

        fs, base = fsspec.core.url_to_fs(self.url(dbfs_path))
        fs.makedirs(base, exist_ok=True)
