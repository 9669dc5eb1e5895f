"""The metadata store's engine and sessions (async SQLAlchemy; SQLite WAL or PostgreSQL)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session

__all__ = ["Database"]


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

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()
