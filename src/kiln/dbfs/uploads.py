"""Files API multipart uploads: databricks-sdk's handshake for files of 50 MB and more.

`initiate-upload` opens a session (a `file_uploads` row and a staging folder) and returns its
token; each part is PUT (in any order, possibly in parallel) to a URL Kiln hands out, and is
stored as `part-<number>-<etag>` in the staging folder, the etag being random; `complete-upload`
names the parts and their etags, which are joined in order and renamed into place; `abort-upload`
drops everything. A session belongs to the user who opened it, for the path it was opened for.
Sessions survive a restart (every part is a whole file and complete-upload checks each etag);
one left alone for a day is dropped when another session starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import shutil
from collections.abc import AsyncIterable, Sequence
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from kiln.dbfs import streams
from kiln.dbfs.files import publish_staged
from kiln.dbfs.store import DbfsStore
from kiln.errors import InvalidParameterValue, ResourceDoesNotExist
from kiln.store.models import FileUpload, now_utc

__all__ = [
    "ABANDONED_AFTER",
    "MAX_PART_NUMBER",
    "abort_upload",
    "complete_upload",
    "get_upload",
    "initiate_upload",
    "upload_part",
]

MAX_PART_NUMBER = 10_000
# Sessions older than this are abandoned: their parts are dropped when another one starts.
ABANDONED_AFTER = timedelta(days=1)
_ETAG = re.compile(r"^[0-9a-f]{32}$")
_COPY_BLOCK = 8 * 1024 * 1024


def _part_name(part_number: int, etag: str) -> str:
    return f"part-{part_number:05d}-{etag}"


async def _purge_abandoned(session: AsyncSession, store: DbfsStore) -> None:
    cutoff = now_utc() - ABANDONED_AFTER
    rows = (
        await session.scalars(select(FileUpload).where(FileUpload.created_at < cutoff).limit(100))
    ).all()
    for row in rows:
        await asyncio.to_thread(store.discard, row.staging_dir)
        await session.delete(row)


async def initiate_upload(
    session: AsyncSession, store: DbfsStore, user_id: int, path: str, *, overwrite: bool
) -> str:
    """Open a multipart upload session for `path`; its token."""
    await asyncio.to_thread(store.check_target, path, overwrite=overwrite)
    await _purge_abandoned(session, store)
    staging_dir = store.staging_location()
    await asyncio.to_thread(store.fs.makedirs, staging_dir, exist_ok=True)
    token = secrets.token_urlsafe(24)
    session.add(
        FileUpload(
            session_token=token,
            path=path,
            staging_dir=staging_dir,
            overwrite=overwrite,
            user_id=user_id,
        )
    )
    await session.flush()
    return token


async def get_upload(session: AsyncSession, user_id: int, path: str, token: str) -> FileUpload:
    """The caller's open session `token` for `path` (404 for anything else)."""
    row = await session.scalar(select(FileUpload).where(FileUpload.session_token == token))
    if row is None or row.user_id != user_id or row.path != path:
        raise ResourceDoesNotExist(f"Upload session {token!r} for {path} does not exist.")
    return row


async def upload_part(
    session: AsyncSession,
    store: DbfsStore,
    user_id: int,
    path: str,
    token: str,
    part_number: int,
    chunks: AsyncIterable[bytes],
) -> str:
    """Store one part of an upload from a streamed body; its etag."""
    if not 1 <= part_number <= MAX_PART_NUMBER:
        raise InvalidParameterValue(
            f"part_number must be between 1 and {MAX_PART_NUMBER}, got {part_number}."
        )
    row = await get_upload(session, user_id, path, token)
    staging_dir = row.staging_dir
    # The row is all this request needs: let go of the database before the long body arrives.
    await session.commit()
    etag = secrets.token_hex(16)
    staged = streams.StagedFile(store, f"{staging_dir}/.tmp-{etag}")
    await staged.open()
    try:
        async for chunk in chunks:
            await staged.write(chunk)
        await staged.close()
        final = f"{staging_dir}/{_part_name(part_number, etag)}"
        await asyncio.to_thread(store.fs.mv, staged.location, final)
    except BaseException:
        await staged.discard()
        raise
    return etag


def _copy_fd(src: int, dst: int) -> None:
    remaining = os.fstat(src).st_size
    # copy_file_range keeps the bytes in the kernel (or shares extents); both offsets advance.
    with contextlib.suppress(OSError):
        while remaining > 0:
            copied = os.copy_file_range(src, dst, remaining)
            if copied == 0:
                break
            remaining -= copied
    while remaining > 0:
        block = os.read(src, min(_COPY_BLOCK, remaining))
        if not block:
            break
        view = memoryview(block)
        while view:
            view = view[os.write(dst, view) :]
        remaining -= len(block)


def _concatenate(store: DbfsStore, sources: Sequence[str], target: str) -> None:
    if store.is_local:
        with open(target, "wb", buffering=0) as out:
            for source in sources:
                with open(source, "rb", buffering=0) as src:
                    _copy_fd(src.fileno(), out.fileno())
        return
    with store.fs.open(target, "wb") as out:
        for source in sources:
            with store.fs.open(source, "rb") as src:
                shutil.copyfileobj(src, out, _COPY_BLOCK)


async def complete_upload(
    session: AsyncSession,
    store: DbfsStore,
    user_id: int,
    path: str,
    token: str,
    parts: Sequence[tuple[int, str]],
) -> None:
    """Join the named parts in order and publish the file; the session ends either way."""
    row = await get_upload(session, user_id, path, token)
    if not parts:
        raise InvalidParameterValue("parts must name at least one uploaded part.")
    numbers = [n for n, _ in parts]
    if numbers != sorted(set(numbers)):
        raise InvalidParameterValue("parts must be in ascending part_number order, each once.")
    names = []
    for number, raw_etag in parts:
        etag = raw_etag.strip().strip('"')
        if not _ETAG.match(etag):
            raise InvalidParameterValue(f"Invalid etag {raw_etag!r} for part {number}.")
        names.append(_part_name(number, etag))
    staging_dir, overwrite = row.staging_dir, row.overwrite

    def check_parts() -> list[str]:
        present = {os.path.basename(p.rstrip("/")) for p in store.fs.ls(staging_dir, detail=False)}
        for (number, _), name in zip(parts, names, strict=True):
            if name not in present:
                raise InvalidParameterValue(f"Part {number} with that etag was not uploaded.")
        return [f"{staging_dir}/{name}" for name in names]

    sources = await asyncio.to_thread(check_parts)
    await session.execute(delete(FileUpload).where(FileUpload.id == row.id))
    try:
        target = f"{staging_dir}.joined"
        await asyncio.to_thread(_concatenate, store, sources, target)
        await publish_staged(store, target, path, overwrite=overwrite)
    except BaseException:
        with contextlib.suppress(Exception):
            await session.commit()
        raise
    finally:
        await asyncio.to_thread(store.discard, staging_dir)


async def abort_upload(
    session: AsyncSession, store: DbfsStore, user_id: int, path: str, token: str
) -> None:
    """Drop an upload session and every part it received."""
    row = await get_upload(session, user_id, path, token)
    await session.execute(delete(FileUpload).where(FileUpload.id == row.id))
    await asyncio.to_thread(store.discard, row.staging_dir)
