"""Idle execution contexts kept for the next notebook run of the same user on the same cluster.

Starting a context's Python costs seconds; running a no-op notebook in one costs a few
milliseconds. A run that ended with its context healthy leaves the context here, and the next
run of that user on that cluster takes it (the driver side makes its namespace fresh, see
`kiln.driver.dbutils.recycle`). Contexts idle for too long, and those past the cap, are
destroyed by the caller.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

from kiln.principal import Principal

__all__ = ["IdleContext", "IdleContexts"]

# Enough for a for_each at concurrency 32 on one cluster; each idle Python holds ~100 MB.
MAX_IDLE_PER_CLUSTER = 32
IDLE_SECONDS = 600.0


@dataclass(frozen=True, slots=True)
class IdleContext:
    """A context waiting for its next run."""

    cluster_id: str
    principal: Principal
    context_id: str
    since: float


class IdleContexts:
    """The idle contexts of every cluster, newest last per (cluster, user)."""

    def __init__(
        self, max_per_cluster: int = MAX_IDLE_PER_CLUSTER, idle_seconds: float = IDLE_SECONDS
    ) -> None:
        self.max_per_cluster = max_per_cluster
        self.idle_seconds = idle_seconds
        self._idle: dict[tuple[str, int], deque[IdleContext]] = {}

    def take(self, cluster_id: str, user_id: int) -> IdleContext | None:
        """The most recently used idle context of that user on that cluster, if any."""
        queue = self._idle.get((cluster_id, user_id))
        if not queue:
            return None
        found = queue.pop()
        if not queue:
            del self._idle[(cluster_id, user_id)]
        return found

    def put(self, cluster_id: str, principal: Principal, context_id: str) -> bool:
        """Keep a context for later; False when its cluster already keeps as many as allowed."""
        held = sum(len(q) for (c, _), q in self._idle.items() if c == cluster_id)
        if held >= self.max_per_cluster:
            return False
        entry = IdleContext(cluster_id, principal, context_id, time.monotonic())
        self._idle.setdefault((cluster_id, principal.user_id), deque()).append(entry)
        return True

    def expired(self) -> list[IdleContext]:
        """Take out every context idle for longer than allowed."""
        limit = time.monotonic() - self.idle_seconds
        gone: list[IdleContext] = []
        for key in list(self._idle):
            queue = self._idle[key]
            while queue and queue[0].since < limit:
                gone.append(queue.popleft())
            if not queue:
                del self._idle[key]
        return gone

    def drain(self) -> list[IdleContext]:
        """Take out every idle context (the control plane is stopping)."""
        gone = [entry for queue in self._idle.values() for entry in queue]
        self._idle.clear()
        return gone
