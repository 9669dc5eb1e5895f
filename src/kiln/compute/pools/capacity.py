"""Pool capacity: who may take instances now, and the queue of clusters waiting for them.

Databricks fails a cluster whose pool is full (INSTANCE_POOL_MAX_CAPACITY_REACHED). Kiln keeps
it PENDING instead, in a `PoolWaiter` queue served strictly in arrival order, unless the
cluster asked to fail fast. The decision itself is a pure function, tested on its own.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Grant", "Usage", "grant", "waiting_message"]


@dataclass(frozen=True, slots=True)
class Usage:
    """A pool's instances by state, as the four stats count them."""

    pending_idle: int = 0
    idle: int = 0
    pending_used: int = 0
    used: int = 0

    @property
    def total(self) -> int:
        """Every instance that counts against max_capacity."""
        return self.pending_idle + self.idle + self.pending_used + self.used

    def wire(self) -> dict[str, int]:
        """Databricks' `InstancePoolStats`."""
        return {
            "used_count": self.used,
            "idle_count": self.idle,
            "pending_used_count": self.pending_used,
            "pending_idle_count": self.pending_idle,
        }


@dataclass(frozen=True, slots=True)
class Grant:
    """What a cluster gets: warm (idle) instances to take, and fresh slots to start cold."""

    warm: int
    fresh: int


def grant(usage: Usage, max_capacity: int | None, needed: int, ahead: int) -> Grant | None:
    """The instances a cluster needing `needed` gets now, or None while it must wait.

    Nobody jumps the queue: with clusters ahead, capacity is theirs first. Idle instances are
    taken before new ones count against max_capacity.
    """
    if ahead > 0:
        return None
    warm = min(usage.idle, needed)
    fresh = needed - warm
    if max_capacity is not None and usage.total + fresh > max_capacity:
        return None
    return Grant(warm=warm, fresh=fresh)


def waiting_message(pool_name: str, ahead: int, usage: Usage, max_capacity: int | None) -> str:
    """The `state_message` of a cluster waiting in a pool's queue."""
    return (
        f"waiting for pool capacity: {ahead} ahead (instance pool {pool_name} has "
        f"{usage.total} of {max_capacity} instances in use or starting)"
    )
