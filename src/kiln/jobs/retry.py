"""Retrying a store write that SQLite refused because another writer held the lock too long.

SQLite has one writer; a connection waits `busy_timeout` (10 s) for it and then gives up with
"database is locked". On a saturated machine, other parts of the control plane can hold the
write lock that long (an execution context's token is minted in a transaction that lasts
while the driver starts the REPL), so the jobs engine retries its own short writes, and the
start of a context, instead of failing a task over it. PostgreSQL never raises this.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.exc import OperationalError

__all__ = ["is_locked", "retry_when_locked"]

T = TypeVar("T")
ATTEMPTS = 5


def is_locked(exc: BaseException) -> bool:
    """Whether `exc` is SQLite's "database is locked"."""
    return isinstance(exc, OperationalError) and "database is locked" in str(exc)


async def retry_when_locked(work: Callable[[], Awaitable[T]], attempts: int = ATTEMPTS) -> T:
    """`work()`, tried again (with a growing pause) while SQLite reports its lock busy."""
    for attempt in range(attempts):
        try:
            return await work()
        except OperationalError as exc:
            if not is_locked(exc) or attempt == attempts - 1:
                raise
            await asyncio.sleep(0.5 * (attempt + 1))
    raise AssertionError("unreachable")
