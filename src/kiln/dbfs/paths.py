"""Client paths of the DBFS and Files APIs, checked before anything touches storage.

Both APIs share one root: `dbfs:/a/b`, `/a/b` (DBFS) and `/Volumes/c/s/v/f` (Files API) all
name a path under it. The staging area for uploads in flight lives in the root under a reserved
top-level name that no client path may reach.
"""

from __future__ import annotations

from kiln.errors import InvalidParameterValue
from kiln.paths import normalize_absolute_path, strip_scheme

__all__ = ["STAGING_DIR", "dbfs_path", "files_path", "join", "name_of", "parent_of"]

# Uploads in flight (DBFS handles, multipart parts, streamed bodies) are written here, then
# renamed into place, so a reader never sees a half-written file.
STAGING_DIR = ".kiln-staging"


def _refuse_reserved(path: str, raw: str) -> str:
    if path == f"/{STAGING_DIR}" or path.startswith(f"/{STAGING_DIR}/"):
        raise InvalidParameterValue(f"Path {raw!r} is reserved.")
    return path


def dbfs_path(raw: object, *, what: str = "path") -> str:
    """A DBFS API path (`/x` or `dbfs:/x`) as a clean absolute path, or a 400."""
    if not isinstance(raw, str):
        raise InvalidParameterValue(f"{what} must be a string")
    return _refuse_reserved(normalize_absolute_path(strip_scheme(raw, "dbfs"), what=what), raw)


def files_path(raw: str, *, what: str = "path") -> str:
    """A Files API path (absolute, no scheme), or a 400."""
    return _refuse_reserved(normalize_absolute_path(raw, what=what), raw)


def join(parent: str, name: str) -> str:
    """`parent/name` for a clean absolute parent."""
    return f"{parent.rstrip('/')}/{name}"


def parent_of(path: str) -> str:
    """The parent of a clean absolute path (`/` for top-level names and for `/` itself)."""
    head = path.rsplit("/", 1)[0]
    return head or "/"


def name_of(path: str) -> str:
    """The last segment of a clean absolute path (empty for `/`)."""
    return path.rsplit("/", 1)[1]
