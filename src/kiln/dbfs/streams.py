"""Moving file bodies between the network and storage without holding them in memory.

Writes gather the network's small chunks into large blocks and hand each block to a thread
while the next one arrives; reads fetch the next block in a thread while the current one is
sent. At most two blocks of one transfer are in memory at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterable, AsyncIterator
from typing import IO

from kiln.dbfs.store import DbfsStore, Entry
from kiln.errors import ResourceDoesNotExist

__all__ = ["BLOCK_SIZE", "StagedFile", "iter_open_file", "open_file", "receive"]

BLOCK_SIZE = 4 * 1024 * 1024


def _write(f: IO[bytes], block: bytes) -> None:
    f.write(block)


class StagedFile:
    """A new file in the staging area, written block by block in a thread."""

    def __init__(self, store: DbfsStore, location: str | None = None) -> None:
        self.store = store
        self.location = location or store.staging_location()
        self.size = 0
        self._file: IO[bytes] | None = None
        self._pending: list[bytes] = []
        self._buffered = 0
        self._in_flight: asyncio.Future[None] | None = None

    async def open(self, *, append: bool = False) -> StagedFile:
        """Create (or reopen to append to) the staging file."""
        opener = self.store.open_append if append else self.store.open_write
        self._file = await asyncio.to_thread(opener, self.location)
        return self

    async def write(self, data: bytes) -> None:
        """Queue `data`; a full block goes to disk while the caller receives the next."""
        if not data:
            return
        self._pending.append(data)
        self._buffered += len(data)
        self.size += len(data)
        if self._buffered >= BLOCK_SIZE:
            await self._flush()

    async def _flush(self) -> None:
        if self._in_flight is not None:
            await self._in_flight
            self._in_flight = None
        if not self._pending:
            return
        block = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
        self._pending, self._buffered = [], 0
        assert self._file is not None
        self._in_flight = asyncio.ensure_future(asyncio.to_thread(_write, self._file, block))

    async def close(self) -> None:
        """Write what is left and close the file."""
        try:
            await self._flush()
            if self._in_flight is not None:
                await self._in_flight
                self._in_flight = None
        finally:
            if self._file is not None:
                await asyncio.to_thread(self._file.close)
                self._file = None

    async def discard(self) -> None:
        """Abandon the file: close it and remove it from the staging area."""
        with contextlib.suppress(Exception):
            if self._in_flight is not None:
                await self._in_flight
        self._in_flight = None
        self._pending = []
        if self._file is not None:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self._file.close)
            self._file = None
        await asyncio.to_thread(self.store.discard, self.location)


async def receive(store: DbfsStore, chunks: AsyncIterable[bytes]) -> StagedFile:
    """Write a whole body to a new staging file (removed again if the body fails)."""
    staged = await StagedFile(store).open()
    try:
        async for chunk in chunks:
            await staged.write(chunk)
        await staged.close()
    except BaseException:
        await staged.discard()
        raise
    return staged


def _read_at(f: IO[bytes], offset: int, length: int) -> bytes:
    f.seek(offset)
    return f.read(length)


async def open_file(store: DbfsStore, path: str) -> tuple[IO[bytes], Entry]:
    """Open the file at `path` and describe the very file opened (404 if missing or a dir)."""

    def run() -> tuple[IO[bytes], Entry]:
        entry = store.stat(path)
        if entry is None or entry.is_dir:
            raise ResourceDoesNotExist(f"The file {path} does not exist.")
        f = store.open_read(path)
        if store.is_local:
            # A rename may have replaced the file since stat(): describe the open one.
            st = os.fstat(f.fileno())
            entry = Entry(path, False, st.st_size, st.st_mtime)
        return f, entry

    return await asyncio.to_thread(run)


async def iter_open_file(
    f: IO[bytes], start: int, length: int, block_size: int = BLOCK_SIZE
) -> AsyncIterator[bytes]:
    """The bytes `[start, start + length)` of an open file, block by block, read ahead by one.

    The file is closed when the iteration ends, however it ends.
    """
    next_read: asyncio.Future[bytes] | None = None
    try:
        remaining = length
        if remaining > 0:
            next_read = asyncio.ensure_future(
                asyncio.to_thread(_read_at, f, start, min(block_size, remaining))
            )
        while next_read is not None:
            data = await next_read
            next_read = None
            remaining -= len(data)
            if not data:
                break  # the file shrank under us; the client sees a short body
            if remaining > 0:
                next_read = asyncio.ensure_future(
                    asyncio.to_thread(f.read, min(block_size, remaining))
                )
            yield data
    finally:
        # Closing a file opened for reading is cheap and never blocks on a flush; doing it
        # inline also works when the transfer is being cancelled (client gone).
        f.close()
