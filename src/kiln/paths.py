"""Normalizing and confining every client-supplied path (workspace, DBFS, Files API).

A path is refused, never "repaired": `..`, NUL bytes, backslashes, empty segments (`//`),
relative paths and any of these hidden behind one or more rounds of percent-encoding all raise
InvalidParameterValue, so nothing can be read or written outside its root.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

from kiln.errors import InvalidParameterValue

__all__ = ["normalize_absolute_path", "strip_scheme"]

_MAX_DECODE_ROUNDS = 4
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def _check_form(raw: str, form: str) -> None:
    if "\x00" in form:
        raise InvalidParameterValue(f"Path must not contain NUL bytes: {raw!r}")
    if "\\" in form:
        raise InvalidParameterValue(f"Path must not contain backslashes: {raw!r}")
    for part in form.split("/")[1:]:
        if part in (".", ".."):
            raise InvalidParameterValue(f"Path must not contain '.' or '..' segments: {raw!r}")


def normalize_absolute_path(raw: str, *, what: str = "path") -> str:
    """Return `raw` as a clean absolute path (`/a/b`, no trailing slash) or raise a 400."""
    if not isinstance(raw, str) or not raw:
        raise InvalidParameterValue(f"{what} must be a non-empty absolute path")
    if len(raw) > 4096:
        raise InvalidParameterValue(f"{what} is longer than 4096 characters")
    if not raw.startswith("/"):
        raise InvalidParameterValue(f"{what} must be absolute (start with '/'): {raw!r}")
    form = raw
    for _ in range(_MAX_DECODE_ROUNDS):
        _check_form(raw, form)
        decoded = unquote(form)
        if decoded == form:
            break
        form = decoded
    else:
        raise InvalidParameterValue(f"{what} is encoded too many times: {raw!r}")
    path = raw.rstrip("/") if raw != "/" else raw
    if "//" in path:
        raise InvalidParameterValue(f"{what} must not contain empty segments ('//'): {raw!r}")
    return path or "/"


def strip_scheme(raw: str, scheme: str) -> str:
    """Drop a `scheme:` prefix (`dbfs:/x` and `dbfs:///x` → `/x`); other schemes are a 400."""
    if raw.lower().startswith(scheme + ":"):
        return "/" + raw[len(scheme) + 1 :].lstrip("/")
    if _SCHEME.match(raw):
        raise InvalidParameterValue(f"Unsupported path scheme in {raw!r}; expected {scheme}:/")
    return raw
