"""Clusters, their event timelines and the runtime records of the processes they own."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kiln.store.models.base import Base, now_utc

__all__ = ["Cluster", "ClusterEvent", "ClusterPermission", "ClusterRuntime"]


class Cluster(Base):
    """One cluster: the spec its owner asked for, where its lifecycle is, and why it ended.

    `spec` holds the validated create/edit request (Databricks field names); `state` only ever
    changes through `kiln.compute.states.transition`. A permanently deleted cluster keeps its
    row (with `deleted_at`) until its processes are gone, and is invisible to the API meanwhile.
    """

    __tablename__ = "clusters"

    cluster_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    cluster_name: Mapped[str] = mapped_column(String(255), default="", index=True)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    state: Mapped[str] = mapped_column(String(32), default="PENDING", index=True)
    state_message: Mapped[str] = mapped_column(Text, default="")
    termination_reason: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    cluster_source: Mapped[str] = mapped_column(String(32), default="API")
    creator_user_name: Mapped[str] = mapped_column(String(255), default="")
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    pinned: Mapped[bool] = mapped_column(Boolean, default=False)
    # Workers the cluster runs now (num_workers, or where autoscaling has put it).
    target_workers: Mapped[int] = mapped_column(default=0)
    spark_context_id: Mapped[int | None] = mapped_column()
    log_status: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=now_utc)
    start_time: Mapped[datetime] = mapped_column(default=now_utc)
    last_restarted_time: Mapped[datetime | None] = mapped_column()
    last_state_loss_time: Mapped[datetime | None] = mapped_column()
    terminated_time: Mapped[datetime | None] = mapped_column()
    # Last user-visible activity the control plane saw (start, command, job).
    last_activity_time: Mapped[datetime] = mapped_column(default=now_utc)
    deleted_at: Mapped[datetime | None] = mapped_column()
    # Optimistic concurrency: the API and the supervisor change clusters in separate
    # transactions, so an update made from a stale read fails instead of winning silently.
    version: Mapped[int] = mapped_column(default=1)

    __mapper_args__ = {"version_id_col": version}


class ClusterEvent(Base):
    """One entry of a cluster's timeline (`/clusters/events`), oldest first by id."""

    __tablename__ = "cluster_events"
    __table_args__ = (Index("ix_cluster_events_cluster_time", "cluster_id", "timestamp"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    cluster_id: Mapped[str] = mapped_column(ForeignKey("clusters.cluster_id", ondelete="CASCADE"))
    timestamp: Mapped[datetime] = mapped_column(default=now_utc)
    type: Mapped[str] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class ClusterRuntime(Base):
    """What a running cluster owns: recorded before anything depends on it, so a restarted
    control plane can adopt live processes or reconcile dead ones.

    `handle` belongs to the backend that started the cluster (PIDs with their start times,
    ports, process groups); the columns beside it are what every backend shares.
    """

    __tablename__ = "cluster_runtimes"

    cluster_id: Mapped[str] = mapped_column(
        ForeignKey("clusters.cluster_id", ondelete="CASCADE"), primary_key=True
    )
    backend: Mapped[str] = mapped_column(String(64))
    handle: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    control_url: Mapped[str | None] = mapped_column(String(255))
    secret_path: Mapped[str | None] = mapped_column(String(4096))
    spark_app_id: Mapped[str | None] = mapped_column(String(255))
    spark_ui_port: Mapped[int | None] = mapped_column()
    started_at: Mapped[datetime] = mapped_column(default=now_utc)
    updated_at: Mapped[datetime] = mapped_column(default=now_utc)


class ClusterPermission(Base):
    """One direct grant on a cluster (`/api/2.0/permissions/clusters/{id}`): a user, group or
    service principal, named as Databricks names it, and its level (CAN_ATTACH_TO,
    CAN_RESTART or CAN_MANAGE). Owners and admins hold CAN_MANAGE without a row."""

    __tablename__ = "cluster_permissions"
    __table_args__ = (UniqueConstraint("cluster_id", "principal_type", "principal"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    cluster_id: Mapped[str] = mapped_column(
        ForeignKey("clusters.cluster_id", ondelete="CASCADE"), index=True
    )
    # user_name, group_name or service_principal_name.
    principal_type: Mapped[str] = mapped_column(String(32))
    principal: Mapped[str] = mapped_column(String(255))
    permission_level: Mapped[str] = mapped_column(String(32))
