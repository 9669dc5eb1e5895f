"""The metadata store's engine and sessions (async SQLAlchemy; SQLite WAL or PostgreSQL)."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, cast

from sqlalchemy import Engine, Executable, create_engine, event, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement

__all__ = ["Database", "Statement"]

# Statements `write` keeps compiled (callers reuse one statement object per shape).
MAX_COMPILED = 256
# A Core statement and its parameters (None, one dict, or a list of dicts for many rows).
Statement = tuple[Executable, dict[str, Any] | list[dict[str, Any]] | None]


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # WAL lets readers run beside the one writer; foreign keys are off by default in SQLite.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


class Database:
    """Owns the engine; hands out sessions that commit on success and roll back on error."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        # Sessions end every transaction themselves (commit, or rollback on close), so the pool's
        # own rollback on return would only add a round trip (a thread hop on aiosqlite).
        kwargs: dict[str, Any] = {"pool_reset_on_return": None}
        if not self.is_sqlite:
            kwargs.update(pool_size=10, max_overflow=20, pool_pre_ping=True)
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if self.is_sqlite:
            from kiln.store.sqlite_one_hop import use_one_hop_cursors

            # Listeners run in order: the swap comes first so the pragmas use the new cursors.
            event.listen(self.engine.sync_engine, "connect", use_one_hop_cursors)
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        # A Session class of this database's own, so listeners (e.g. cache invalidation) attach
        # to its sessions only.
        self.session_class: type[Session] = type("KilnSession", (Session,), {})
        self.sessions = async_sessionmaker(
            self.engine, expire_on_commit=False, sync_session_class=self.session_class
        )
        self._sync_engine: Engine | None = None
        self._sync_lock = threading.Lock()
        self._statements: dict[tuple[Any, tuple[str, ...]], tuple[str, list[tuple[str, Any]]]] = {}

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A unit of work: committed when the block ends cleanly, rolled back otherwise."""
        async with self.sessions() as session:
            try:
                yield session
                await session.commit()
            except BaseException:
                await session.rollback()
                raise

    async def write(self, statements: Sequence[Statement]) -> None:
        """Run write statements (Core, each with its parameters: a dict, or a list of them for
        many rows) in one transaction. On SQLite all of them take one trip to a thread,
        through a synchronous engine on the same file, instead of a trip per statement and
        one for the commit: for a small write that happens often (a job's for_each iteration
        ending) the trips are most of its cost."""
        if not statements:
            return
        if not self.is_sqlite or make_url(self.url).database in (None, "", ":memory:"):
            async with self.engine.begin() as conn:
                for statement, parameters in statements:
                    await conn.execute(statement, parameters)
            return
        await asyncio.to_thread(self._write_sync, list(statements))

    def _write_sync(self, statements: list[Statement]) -> None:
        with self._sync_lock:
            if self._sync_engine is None:
                url = make_url(self.url).set(drivername="sqlite")
                engine = create_engine(
                    url,
                    pool_reset_on_return=None,
                    connect_args={"check_same_thread": False},
                )
                event.listen(engine, "connect", _sqlite_pragmas)
                self._sync_engine = engine
            engine = self._sync_engine
        # Straight to sqlite3, each statement compiled once per shape: SQLAlchemy's execution
        # machinery costs several times what SQLite does for a write this small.
        with engine.connect() as conn:
            raw = conn.connection.driver_connection
            assert raw is not None
            sql, rows = "", []
            try:
                for statement, parameters in statements:
                    many = parameters if isinstance(parameters, list) else [parameters or {}]
                    sql, binds = self._compiled(statement, tuple(many[0]), engine)
                    rows = [
                        [
                            p[name] if process is None else process(p[name])
                            for name, process in binds
                        ]
                        for p in many
                    ]
                    if len(rows) > 1:
                        raw.executemany(sql, rows)
                    else:
                        raw.execute(sql, rows[0])
                raw.commit()
            except sqlite3.Error as exc:
                raw.rollback()
                # The same exception classes as every other write (IntegrityError, ...).
                raise DBAPIError.instance(sql, rows, exc, sqlite3.Error) from exc
            except BaseException:
                raw.rollback()
                raise

    def _compiled(
        self, statement: Executable, keys: tuple[str, ...], engine: Engine
    ) -> tuple[str, list[tuple[str, Any]]]:
        """A statement's SQL for these parameters and, in order, each parameter's name and the
        conversion its type makes (JSON, timestamps) before it reaches sqlite3."""
        found = self._statements.get((statement, keys))
        if found is None:
            dialect = engine.dialect
            clause = cast(ClauseElement, statement)
            compiled = cast(SQLCompiler, clause.compile(dialect=dialect, column_keys=list(keys)))
            binds = [
                (name, compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect))
                for name in compiled.positiontup or []
            ]
            if len(self._statements) > MAX_COMPILED:
                self._statements.clear()
            found = self._statements[(statement, keys)] = (compiled.string, binds)
        return found

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()
        if self._sync_engine is not None:
            self._sync_engine.dispose()
