"""Read-ahead for sequential `dbfs/read` calls.

Clients read a file 1 MB at a time and decode each answer before they ask for the next, so the
server sits idle while the client works and the client waits while the server reads and
encodes. After answering a read, Kiln prepares the next block of the same file in a thread;
the next call, if it asks for exactly that block and the file is unchanged, is answered at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass

__all__ = ["Prepared", "ReadAhead"]


@dataclass(frozen=True, slots=True)
class Prepared:
    """One block, read and encoded, with the identity of the file it came from."""

    identity: Hashable
    at_end: bool
    body: bytes


def _retrieve(future: asyncio.Future[Prepared]) -> None:
    # A prepared block nobody asks for must not log "exception was never retrieved".
    if not future.cancelled():
        future.exception()


class ReadAhead:
    """A small LRU of blocks being prepared, keyed by (path, offset, length)."""

    def __init__(self, capacity: int = 16) -> None:
        self.capacity = capacity
        self._blocks: OrderedDict[tuple[str, int, int], asyncio.Future[Prepared]] = OrderedDict()

    def take(self, key: tuple[str, int, int]) -> asyncio.Future[Prepared] | None:
        """The block being prepared for `key`, removed from the cache."""
        return self._blocks.pop(key, None)

    def offer(self, key: tuple[str, int, int], future: asyncio.Future[Prepared]) -> None:
        """Keep a block being prepared, dropping the oldest beyond capacity."""
        future.add_done_callback(_retrieve)
        self._blocks[key] = future
        self._blocks.move_to_end(key)
        while len(self._blocks) > self.capacity:
            _, dropped = self._blocks.popitem(last=False)
            with contextlib.suppress(Exception):
                dropped.cancel()
