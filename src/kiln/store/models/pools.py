"""Instance pools, their warm instances, and the clusters queued for their capacity."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from kiln.store.models.base import Base, now_utc

__all__ = ["InstancePool", "PoolInstance", "PoolWaiter"]


class InstancePool(Base):
    """A pool: the spec its owner asked for (Databricks field names) and its state."""

    __tablename__ = "instance_pools"

    instance_pool_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    instance_pool_name: Mapped[str] = mapped_column(String(255), index=True)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    state: Mapped[str] = mapped_column(String(32), default="ACTIVE")  # ACTIVE, STOPPED, DELETED
    creator_user_name: Mapped[str] = mapped_column(String(255), default="")
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=now_utc)
    deleted_at: Mapped[datetime | None] = mapped_column()


class PoolInstance(Base):
    """One instance of a pool: a started driver runtime, idle or lent to a cluster.

    `handle` is the backend's runtime handle (PIDs with start times, ports), recorded before
    anything depends on it so a restarted control plane can adopt or reap the instance.
    """

    __tablename__ = "pool_instances"

    instance_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    instance_pool_id: Mapped[str] = mapped_column(
        ForeignKey("instance_pools.instance_pool_id", ondelete="CASCADE"), index=True
    )
    state: Mapped[str] = mapped_column(String(32), default="PENDING")  # PENDING, IDLE, USED, ...
    cluster_id: Mapped[str | None] = mapped_column(String(64), index=True)
    handle: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=now_utc)
    idle_since: Mapped[datetime | None] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column(default=now_utc)


class PoolWaiter(Base):
    """A cluster waiting for pool capacity; served in arrival order (`id`)."""

    __tablename__ = "pool_waiters"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    cluster_id: Mapped[str] = mapped_column(
        ForeignKey("clusters.cluster_id", ondelete="CASCADE"), unique=True
    )
    instance_pool_id: Mapped[str] = mapped_column(
        ForeignKey("instance_pools.instance_pool_id", ondelete="CASCADE"), index=True
    )
    instances_needed: Mapped[int] = mapped_column(default=1)
    enqueued_at: Mapped[datetime] = mapped_column(default=now_utc)
