"""DBFS streaming handles: `create`, then `add-block` any number of times, then `close`.

A handle is a row of `dbfs_handles` plus, while the server runs, an entry in
`DbfsStore.open_handles` holding the open staging file, so an `add-block` costs no database
round trip. Only the user who created a handle can use it; to anyone else it does not exist.

Blocks are pipelined: `add-block` checks its block, waits for the previous block to be on
disk, then hands this one (decoding included) to a thread and answers, so the server decodes
block N while the client encodes block N+1. A failure surfaces on the next call for the handle,
and `close` waits for the last block before the file is renamed into place.

DBFS's `add-block` names no offset, so a handle cannot be resumed safely by a new server
process (a client retrying a block after a restart would append it twice). A handle from an
earlier process is therefore refused and removed. Whenever a handle is created, the handles of
earlier processes and those idle for more than 10 minutes (Databricks' idle timeout) are
purged, rows and staging files both.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from kiln.dbfs.store import DbfsStore
from kiln.errors import MaxBlockSizeExceeded, ResourceDoesNotExist
from kiln.store.models import DbfsHandle

__all__ = ["IDLE_TIMEOUT_S", "OpenHandle", "add_block", "close_handle", "create_handle"]

IDLE_TIMEOUT_S = 600.0


@dataclass
class OpenHandle:
    """A handle as the running server holds it."""

    id: int
    user_id: int
    path: str
    staging: str
    overwrite: bool
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    file: IO[bytes] | None = None
    # The block being decoded and written in a thread, if any.
    pending: asyncio.Future[None] | None = None
    last_used: float = field(default_factory=time.monotonic)


def _touch(store: DbfsStore, loc: str) -> None:
    store.open_write(loc).close()


def _append(handle: OpenHandle, store: DbfsStore, block: Callable[[], bytes]) -> None:
    data = block()
    if handle.file is None:
        handle.file = store.open_append(handle.staging)
    handle.file.write(data)
    handle.file.flush()


def _retrieve(future: asyncio.Future[None]) -> None:
    # A failed block of an abandoned handle must not log "exception was never retrieved".
    if not future.cancelled():
        future.exception()


async def _settle(handle: OpenHandle) -> None:
    """Wait for the block in flight; raise its failure, if it failed."""
    pending, handle.pending = handle.pending, None
    if pending is not None:
        await pending


def _not_found(handle_id: int) -> ResourceDoesNotExist:
    return ResourceDoesNotExist(f"Handle {handle_id} does not exist.")


async def _drop(session: AsyncSession, store: DbfsStore, handle: OpenHandle) -> None:
    store.open_handles.pop(handle.id, None)
    with contextlib.suppress(Exception):
        await _settle(handle)
    if handle.file is not None:
        with contextlib.suppress(Exception):
            await asyncio.to_thread(handle.file.close)
        handle.file = None
    await asyncio.to_thread(store.discard, handle.staging)
    await session.execute(delete(DbfsHandle).where(DbfsHandle.id == handle.id))


async def _purge_stale(session: AsyncSession, store: DbfsStore) -> None:
    idle_since = time.monotonic() - IDLE_TIMEOUT_S
    for handle in list(store.open_handles.values()):
        if handle.last_used < idle_since and not handle.lock.locked():
            await _drop(session, store, handle)
    started = datetime.fromtimestamp(store.started_at, UTC)
    rows = (
        await session.scalars(select(DbfsHandle).where(DbfsHandle.created_at < started).limit(100))
    ).all()
    for row in rows:
        if row.id not in store.open_handles:
            await asyncio.to_thread(store.discard, row.staging_path)
            await session.delete(row)


async def create_handle(
    session: AsyncSession, store: DbfsStore, user_id: int, path: str, *, overwrite: bool
) -> int:
    """Open a new handle to write the file at `path`."""
    await asyncio.to_thread(store.check_target, path, overwrite=overwrite)
    await _purge_stale(session, store)
    staging = store.staging_location()
    await asyncio.to_thread(_touch, store, staging)
    row = DbfsHandle(path=path, staging_path=staging, overwrite=overwrite, user_id=user_id)
    session.add(row)
    await session.flush()
    store.open_handles[row.id] = OpenHandle(row.id, user_id, path, staging, overwrite)
    return row.id


async def _lookup(
    session: AsyncSession, store: DbfsStore, user_id: int, handle_id: int
) -> OpenHandle:
    handle = store.open_handles.get(handle_id)
    if handle is not None and handle.user_id == user_id:
        return handle
    if handle is None:
        row = await session.scalar(select(DbfsHandle).where(DbfsHandle.id == handle_id))
        if row is not None and row.user_id == user_id:
            # Created by an earlier server process: not resumable (see the module docstring).
            await asyncio.to_thread(store.discard, row.staging_path)
            await session.delete(row)
            await session.commit()
            raise ResourceDoesNotExist(
                f"Handle {handle_id} was lost when the server restarted; create a new one."
            )
    raise _not_found(handle_id)


async def add_block(
    session: AsyncSession,
    store: DbfsStore,
    user_id: int,
    handle_id: int,
    block: Callable[[], bytes],
    *,
    size: int,
    max_block: int,
) -> None:
    """Append a block of `size` bytes, produced by `block()` in a thread, to a handle's file."""
    if size > max_block:
        raise MaxBlockSizeExceeded(
            f"The block of {size} bytes exceeds the limit of {max_block} bytes."
        )
    handle = await _lookup(session, store, user_id, handle_id)
    async with handle.lock:
        if store.open_handles.get(handle_id) is not handle:
            raise _not_found(handle_id)  # closed while this block waited for the lock
        await _settle(handle)
        pending = asyncio.ensure_future(asyncio.to_thread(_append, handle, store, block))
        pending.add_done_callback(_retrieve)
        handle.pending = pending
        handle.last_used = time.monotonic()


async def close_handle(
    session: AsyncSession, store: DbfsStore, user_id: int, handle_id: int
) -> None:
    """Close a handle and publish its file; the handle is gone even if that fails."""
    handle = await _lookup(session, store, user_id, handle_id)
    async with handle.lock:
        if store.open_handles.pop(handle_id, None) is not handle:
            raise _not_found(handle_id)
        await session.execute(delete(DbfsHandle).where(DbfsHandle.id == handle_id))
        try:
            await _settle(handle)
            if handle.file is not None:
                await asyncio.to_thread(handle.file.close)
                handle.file = None
            await asyncio.to_thread(
                store.publish, handle.staging, handle.path, overwrite=handle.overwrite
            )
        except BaseException:
            # The client sees the error, and the handle must not outlive it.
            with contextlib.suppress(Exception):
                await session.commit()
            if handle.file is not None:
                with contextlib.suppress(Exception):
                    handle.file.close()
            await asyncio.to_thread(store.discard, handle.staging)
            raise
