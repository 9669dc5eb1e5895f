"""One trip to aiosqlite's thread per SQLite statement instead of four.

SQLAlchemy's aiosqlite adapter opens a cursor, executes, fetches and closes it as four separate
awaits, each a hand-off to aiosqlite's worker thread and back through the event loop. On a
busy 2-core machine each hand-off costs a fraction of a millisecond, and an authenticated read
makes a few statements: the hops were the largest part of its latency. `use_one_hop_cursors`
gives a connection a cursor class that runs the whole statement (execute, fetch every row,
read description/rowcount/lastrowid, close) in one call on aiosqlite's thread.

It touches two private names: aiosqlite's `Connection._execute` (run a callable on its thread)
and `_conn` (the sqlite3 connection), both stable across aiosqlite releases and covered by the
store tests, which run every query shape Kiln uses through it.
"""

from __future__ import annotations

import collections
import sqlite3
from collections.abc import Sequence
from typing import Any

from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
)

__all__ = ["use_one_hop_cursors"]

_Outcome = tuple[Any, int, int | None, list[Any] | None]


class _Finished:
    """What SQLAlchemy reads off a cursor after execute, filled from the thread's answer."""

    __slots__ = ("arraysize", "description", "lastrowid", "rowcount")

    def __init__(self) -> None:
        self.description: Any = None
        self.rowcount = -1
        self.lastrowid: int | None = None
        self.arraysize = 1

    def close(self) -> None:
        """Nothing to close: the sqlite3 cursor was closed on the worker thread."""


def _execute(conn: sqlite3.Connection, operation: str, parameters: Any) -> _Outcome:
    cursor = conn.cursor()
    try:
        if parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        rows = cursor.fetchall() if cursor.description else None
        return cursor.description, cursor.rowcount, cursor.lastrowid, rows
    finally:
        cursor.close()


def _executemany(conn: sqlite3.Connection, operation: str, seq: Sequence[Any]) -> _Outcome:
    cursor = conn.cursor()
    try:
        cursor.executemany(operation, seq)
        return cursor.description, cursor.rowcount, cursor.lastrowid, None
    finally:
        cursor.close()


class _OneHopCursor(AsyncAdapt_aiosqlite_cursor):
    __slots__ = ()
    # close() is then a plain call on _Finished, never an await.
    _awaitable_cursor_close = False

    def _make_new_cursor(self, connection: Any) -> Any:
        return _Finished()

    def _aenter_cursor(self, cursor: Any) -> Any:
        return cursor

    def _record(self, outcome: _Outcome) -> None:
        description, rowcount, lastrowid, rows = outcome
        finished: _Finished = self._cursor  # type: ignore[assignment]
        finished.description, finished.rowcount, finished.lastrowid = (
            description,
            rowcount,
            lastrowid,
        )
        if rows is not None:
            self._rows = collections.deque(rows)

    async def _execute_async(self, operation: Any, parameters: Any) -> Any:
        async with self._adapt_connection._execute_mutex:
            conn = self._connection
            self._record(await conn._execute(_execute, conn._conn, operation, parameters))

    async def _executemany_async(self, operation: Any, seq_of_parameters: Any) -> Any:
        async with self._adapt_connection._execute_mutex:
            conn = self._connection
            self._record(
                await conn._execute(_executemany, conn._conn, operation, seq_of_parameters)
            )


class _OneHopConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()
    _cursor_cls = _OneHopCursor


def use_one_hop_cursors(dbapi_connection: Any, _record: Any = None) -> None:
    """A "connect" event listener: give a new aiosqlite connection one-hop cursors."""
    if type(dbapi_connection) is AsyncAdapt_aiosqlite_connection:
        # Same slots, one class attribute changed: a safe class swap.
        dbapi_connection.__class__ = _OneHopConnection
