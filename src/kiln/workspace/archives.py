"""Zip archives of workspace folders (DBC and SOURCE directory exports), read defensively.

Every entry name is confined like a client path (no `..`, absolute names, backslashes or NUL
bytes), and the sizes the archive declares are bounded before anything is inflated, so a
crafted archive can neither escape its target folder nor exhaust memory.
"""

from __future__ import annotations

import io
import zipfile
import zlib
from collections.abc import Iterable

from kiln.errors import InvalidParameterValue
from kiln.paths import normalize_absolute_path

__all__ = ["is_zip", "read_zip", "write_zip"]

MAX_ENTRIES = 10_000


def is_zip(data: bytes) -> bool:
    """Whether `data` is a zip archive."""
    return data[:4] == b"PK\x03\x04" and zipfile.is_zipfile(io.BytesIO(data))


def write_zip(entries: Iterable[tuple[str, bytes]]) -> bytes:
    """A deflated zip of (relative name, bytes) entries."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries:
            archive.writestr(name, data)
    return buffer.getvalue()


def read_zip(data: bytes, *, max_total: int) -> list[tuple[str, bytes]]:
    """The archive's files as (clean relative name, bytes); folders are implied by names."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise InvalidParameterValue(f"The archive is not a valid zip file: {exc}") from exc
    with archive:
        infos = [i for i in archive.infolist() if not i.is_dir()]
        if len(infos) > MAX_ENTRIES:
            raise InvalidParameterValue(f"The archive has more than {MAX_ENTRIES} entries.")
        if sum(i.file_size for i in infos) > max_total:
            raise InvalidParameterValue(f"The archive inflates to more than {max_total} bytes.")
        entries = []
        for info in infos:
            clean = normalize_absolute_path("/" + info.filename, what="archive entry name")
            if clean == "/":
                raise InvalidParameterValue(f"Invalid archive entry name {info.filename!r}")
            try:
                entries.append((clean[1:], archive.read(info)))
            except (
                zipfile.BadZipFile,
                zlib.error,
                OSError,
                RuntimeError,
                ValueError,
                EOFError,
            ) as exc:
                raise InvalidParameterValue(f"Corrupt archive entry {info.filename!r}") from exc
        return entries
