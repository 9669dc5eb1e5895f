"""`Range` and `If-Unmodified-Since` of Files API downloads (RFC 9110), as pure functions.

databricks-sdk resumes a broken download with `Range: bytes=<offset>-` plus the
`If-Unmodified-Since` it saw first, and its parallel download asks for `bytes=<a>-<b>` parts.
"""

from __future__ import annotations

from email.utils import formatdate, parsedate_to_datetime

from kiln.errors import PreconditionFailed, RangeNotSatisfiable

__all__ = [
    "PreconditionFailed",
    "RangeNotSatisfiable",
    "check_unmodified_since",
    "http_date",
    "parse_range",
]


def http_date(epoch_seconds: float) -> str:
    """An HTTP date (`Last-Modified` form), to the second."""
    return formatdate(int(epoch_seconds), usegmt=True)


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The inclusive byte span a `Range` header asks for, or None to send the whole file.

    Multi-range and non-byte requests are answered with the whole file, which RFC 9110 allows.
    """
    if not header:
        return None
    unit, _, spec = header.strip().partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    if not dash:
        raise RangeNotSatisfiable(f"Malformed Range header: {header!r}")
    try:
        if not first:  # a suffix: the last N bytes
            count = int(last)
            if count <= 0 or size == 0:
                raise RangeNotSatisfiable(f"Range {header!r} is not satisfiable (size {size}).")
            return max(0, size - count), size - 1
        start = int(first)
        end = int(last) if last else size - 1
    except ValueError:
        raise RangeNotSatisfiable(f"Malformed Range header: {header!r}") from None
    if start < 0 or end < start:
        raise RangeNotSatisfiable(f"Malformed Range header: {header!r}")
    if start >= size:
        raise RangeNotSatisfiable(f"Range {header!r} is not satisfiable (size {size}).")
    return start, min(end, size - 1)


def check_unmodified_since(header: str | None, mtime: float) -> None:
    """Raise 412 if the file changed after the HTTP date in `If-Unmodified-Since`."""
    if not header:
        return
    try:
        since = parsedate_to_datetime(header).timestamp()
    except (TypeError, ValueError):
        return  # an unparsable date is ignored, as RFC 9110 says
    if int(mtime) > since:
        raise PreconditionFailed("The file was modified after the If-Unmodified-Since time.")
