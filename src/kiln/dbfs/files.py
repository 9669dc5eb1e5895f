"""File and directory operations of the DBFS API 2.0 and the Files API, over one DbfsStore.

Paths given here are already clean (see `kiln.dbfs.paths`). Every filesystem call runs in a
thread. A file is only ever written to the staging area and then renamed into place, so readers
see either the old file or the new one, never a part.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterable, Callable, Hashable

from kiln.dbfs import streams
from kiln.dbfs.readahead import Prepared
from kiln.dbfs.store import DbfsStore, Entry
from kiln.errors import (
    DirectoryNotEmpty,
    InvalidParameterValue,
    MaxReadSizeExceeded,
    ResourceDoesNotExist,
)
from kiln.paging import decode_page_token, encode_page_token

__all__ = [
    "MAX_DIRECTORY_PAGE",
    "delete",
    "delete_directory",
    "delete_file",
    "directory_status",
    "file_status",
    "get_status",
    "list_directory",
    "list_status",
    "mkdirs",
    "move",
    "publish_staged",
    "put_bytes",
    "put_stream",
    "read_block",
]

MAX_DIRECTORY_PAGE = 1000


async def get_status(store: DbfsStore, path: str) -> Entry:
    """The file or directory at `path` (404 if there is none)."""
    return await asyncio.to_thread(store.require, path)


async def list_status(store: DbfsStore, path: str) -> list[Entry]:
    """A directory's children, or the file itself when `path` is a file (DBFS `list`)."""

    def run() -> list[Entry]:
        entry = store.require(path)
        return store.listdir(path) if entry.is_dir else [entry]

    return await asyncio.to_thread(run)


async def directory_status(store: DbfsStore, path: str) -> Entry:
    """The directory at `path`; 404 if it is missing or a file (Files API)."""
    entry = await asyncio.to_thread(store.stat, path)
    if entry is None or not entry.is_dir:
        raise ResourceDoesNotExist(f"The directory {path} does not exist.")
    return entry


async def file_status(store: DbfsStore, path: str) -> Entry:
    """The file at `path`; 404 if it is missing or a directory (Files API)."""
    entry = await asyncio.to_thread(store.stat, path)
    if entry is None or entry.is_dir:
        raise ResourceDoesNotExist(f"The file {path} does not exist.")
    return entry


async def list_directory(
    store: DbfsStore, path: str, *, page_size: int | None, page_token: str | None
) -> tuple[list[Entry], str | None]:
    """One page of a directory's children and the token of the next page (Files API)."""
    if page_size is not None and page_size < 0:
        raise InvalidParameterValue("page_size must not be negative.")
    size = MAX_DIRECTORY_PAGE if not page_size else min(page_size, MAX_DIRECTORY_PAGE)
    offset = decode_page_token(page_token)
    await directory_status(store, path)
    children = await asyncio.to_thread(store.listdir, path)
    page = children[offset : offset + size]
    more = offset + size < len(children)
    return page, encode_page_token(offset + size) if more else None


async def mkdirs(store: DbfsStore, path: str) -> None:
    """Create a directory and its parents; idempotent (a file in the way is a 409)."""
    await asyncio.to_thread(store.makedirs, path)


async def delete(store: DbfsStore, path: str, *, recursive: bool) -> None:
    """Delete a file or directory (DBFS `delete`); deleting nothing succeeds, as on Databricks."""
    await asyncio.to_thread(store.remove, path, recursive=recursive)


async def delete_file(store: DbfsStore, path: str) -> None:
    """Delete one file (Files API); 404 if it is missing or a directory."""
    await file_status(store, path)
    if not await asyncio.to_thread(store.remove, path, recursive=False):
        raise ResourceDoesNotExist(f"The file {path} does not exist.")


async def delete_directory(store: DbfsStore, path: str) -> None:
    """Delete an empty directory (Files API)."""
    if path == "/":
        raise InvalidParameterValue("Cannot delete the root directory.")
    await directory_status(store, path)

    def run() -> None:
        if store.listdir(path):
            raise DirectoryNotEmpty(f"The directory {path} is not empty.")
        store.remove(path, recursive=False)

    await asyncio.to_thread(run)


async def move(store: DbfsStore, source: str, destination: str) -> None:
    """Rename a file or directory (directories move with everything in them)."""
    await asyncio.to_thread(store.move, source, destination)


def _read_prepared(
    store: DbfsStore, path: str, offset: int, length: int, encode: Callable[[bytes], bytes]
) -> Prepared:
    entry = store.require(path)
    if entry.is_dir:
        raise InvalidParameterValue(f"Cannot read {path}: it is a directory.")
    if offset >= entry.size or length == 0:
        return Prepared(store.identity(path), True, encode(b""))
    with store.open_read(path) as f:
        if store.is_local:
            st = os.fstat(f.fileno())  # the very file read, even if replaced meanwhile
            identity: Hashable = (st.st_ino, st.st_size, st.st_mtime_ns)
            size = st.st_size
        else:
            identity, size = store.identity(path), entry.size
        f.seek(offset)
        data = f.read(length)
    return Prepared(identity, offset + len(data) >= size, encode(data))


async def read_block(
    store: DbfsStore,
    path: str,
    *,
    offset: int,
    length: int,
    max_length: int,
    encode: Callable[[bytes], bytes],
) -> bytes:
    """`encode(data)` of up to `length` bytes from `offset` (DBFS `read`); past the end: b"".

    Reads are usually sequential, so once a block is answered the next one is prepared in a
    thread (see `readahead`); it is used only if the file is still the same file.
    """
    if offset < 0:
        raise InvalidParameterValue(f"offset must not be negative, got {offset}.")
    if length < 0:
        raise InvalidParameterValue(f"length must not be negative, got {length}.")
    if length > max_length:
        raise MaxReadSizeExceeded(
            f"Cannot read more than {max_length} bytes at once; length was {length}."
        )
    block: Prepared | None = None
    prepared = store.read_ahead.take((path, offset, length))
    if prepared is not None:
        with contextlib.suppress(Exception):
            block = await prepared
        if block is not None and block.identity != await asyncio.to_thread(store.identity, path):
            block = None
    if block is None:
        block = await asyncio.to_thread(_read_prepared, store, path, offset, length, encode)
    if not block.at_end:
        following = offset + length
        store.read_ahead.offer(
            (path, following, length),
            asyncio.ensure_future(
                asyncio.to_thread(_read_prepared, store, path, following, length, encode)
            ),
        )
    return block.body


async def put_bytes(store: DbfsStore, path: str, data: bytes, *, overwrite: bool) -> None:
    """Write a whole (small) file at once."""

    def run() -> None:
        store.check_target(path, overwrite=overwrite)
        staged = store.staging_location()
        try:
            with store.open_write(staged) as f:
                f.write(data)
            store.publish(staged, path, overwrite=overwrite)
        finally:
            store.discard(staged)

    await asyncio.to_thread(run)


async def put_stream(
    store: DbfsStore, path: str, chunks: AsyncIterable[bytes], *, overwrite: bool
) -> int:
    """Write a file from a body of any size, streamed through the staging area; its size."""
    await asyncio.to_thread(store.check_target, path, overwrite=overwrite)
    staged = await streams.receive(store, chunks)
    await publish_staged(store, staged.location, path, overwrite=overwrite)
    return staged.size


async def publish_staged(store: DbfsStore, staged: str, path: str, *, overwrite: bool) -> None:
    """Move a complete staging file into place; it is removed if that fails."""
    try:
        await asyncio.to_thread(store.publish, staged, path, overwrite=overwrite)
    except BaseException:
        await asyncio.to_thread(store.discard, staged)
        raise
