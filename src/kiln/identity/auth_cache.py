"""A cache of recently authenticated tokens, so a request costs no authentication query.

Correctness over speed: the whole cache is dropped whenever a transaction that touched tokens,
users, groups or memberships commits (SQLAlchemy session events), a generation counter keeps a
lookup that raced such a commit from being cached, each entry honours its token's expiry, and a
short TTL bounds staleness from writers outside this process (another server on the same
PostgreSQL).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction

from kiln.identity.principal import Principal
from kiln.store.models import Group, GroupMember, Token, User, now_utc

__all__ = ["PrincipalCache"]

_WATCHED = (Token, User, Group, GroupMember)
_WATCHED_TABLES = frozenset(m.__tablename__ for m in _WATCHED)
_DIRTY = "kiln_identity_dirty"


@dataclass(frozen=True, slots=True)
class _Entry:
    principal: Principal
    expires_at: datetime | None
    cached_at: float


def _key(token: str) -> str:
    # Keep digests, not the bearer tokens themselves, in memory.
    return hashlib.sha256(token.encode()).hexdigest()


class PrincipalCache:
    """Token → Principal for tokens seen recently."""

    def __init__(self, ttl_seconds: float = 10.0, max_entries: int = 10_000) -> None:
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self.generation = 0
        self._entries: dict[str, _Entry] = {}

    def get(self, token: str) -> Principal | None:
        """The cached principal of a still-valid token, or None."""
        entry = self._entries.get(_key(token))
        if entry is None:
            return None
        expired = entry.expires_at is not None and entry.expires_at <= now_utc()
        if expired or time.monotonic() - entry.cached_at > self.ttl_seconds:
            self._entries.pop(_key(token), None)
            return None
        return entry.principal

    def put(
        self, token: str, principal: Principal, expires_at: datetime | None, generation: int
    ) -> None:
        """Remember a lookup made at `generation`, unless identity data changed since."""
        if generation != self.generation:
            return
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        self._entries[_key(token)] = _Entry(principal, expires_at, time.monotonic())

    def clear(self) -> None:
        """Forget everything (identity data changed)."""
        self.generation += 1
        self._entries.clear()

    def watch(self, session_class: type[Session]) -> None:
        """Clear the cache after every commit of `session_class` that changed identity data."""

        def after_flush(session: Session, _ctx: UOWTransaction) -> None:
            changed = (*session.new, *session.dirty, *session.deleted)
            if any(isinstance(obj, _WATCHED) for obj in changed):
                session.info[_DIRTY] = True

        def do_orm_execute(state: ORMExecuteState) -> None:
            if state.is_delete or state.is_update:
                table = getattr(state.statement, "table", None)
                if getattr(table, "name", None) in _WATCHED_TABLES:
                    state.session.info[_DIRTY] = True

        def after_commit(session: Session) -> None:
            if session.info.pop(_DIRTY, False):
                self.clear()

        def after_rollback(session: Session) -> None:
            session.info.pop(_DIRTY, None)

        listeners: dict[str, Any] = {
            "after_flush": after_flush,
            "do_orm_execute": do_orm_execute,
            "after_commit": after_commit,
            "after_soft_rollback": lambda session, _tx: after_rollback(session),
        }
        for name, fn in listeners.items():
            event.listen(session_class, name, fn)
