"""Jobs, their runs, the runs of each task, and what each task run left behind.

A job run and its task runs are the durable record the jobs engine works from: a task run is
claimed (`executor`, the id of the control-plane process running it) in the same transaction
that moves it to RUNNING, and what it needs to be found again after a restart (its context and
command, its child run) is written in `checkpoint` before it is relied on.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from kiln.store.models.base import Base, now_utc

__all__ = ["Job", "JobRun", "JobTaskOutput", "JobTaskRun"]

_ID = BigInteger().with_variant(Integer(), "sqlite")


class Job(Base):
    """A saved job: its settings (Databricks field names) and its schedule's progress."""

    __tablename__ = "jobs"

    job_id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=False)
    creator_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    creator_user_name: Mapped[str] = mapped_column(String(255), default="")
    run_as_user_name: Mapped[str] = mapped_column(String(255), default="")
    name: Mapped[str] = mapped_column(String(4096), default="")
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=now_utc, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=now_utc)
    # The schedule's next tick (None when unscheduled or paused) and the last one fired: the
    # scheduler fires a tick by moving both forward in the transaction that creates its run.
    next_fire_at: Mapped[datetime | None] = mapped_column(index=True)
    last_fired_at: Mapped[datetime | None] = mapped_column()


class JobRun(Base):
    """One run of a job (or a one-time submitted run): its frozen settings and where it is."""

    __tablename__ = "job_runs"

    run_id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=False)
    job_id: Mapped[int | None] = mapped_column(_ID, index=True)
    run_name: Mapped[str] = mapped_column(String(4096), default="")
    run_type: Mapped[str] = mapped_column(String(32), default="JOB_RUN")
    trigger: Mapped[str] = mapped_column(String(32), default="ONE_TIME")
    # The job run whose run_job_task started this one, and that task run.
    parent_run_id: Mapped[int | None] = mapped_column(_ID, index=True)
    parent_task_run_id: Mapped[int | None] = mapped_column(_ID)
    creator_user_name: Mapped[str] = mapped_column(String(255), default="")
    run_as_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    run_as_user_name: Mapped[str] = mapped_column(String(255), default="")
    # The job's settings when the run started (tasks, job_clusters, timeouts, webhooks...).
    spec: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    job_parameters: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    overriding_parameters: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # `<job id or "submit">:<token>`: one run per token.
    idempotency_key: Mapped[str | None] = mapped_column(String(100), unique=True)
    life_cycle_state: Mapped[str] = mapped_column(String(32), default="PENDING", index=True)
    result_state: Mapped[str | None] = mapped_column(String(48))
    state_message: Mapped[str] = mapped_column(Text, default="")
    user_cancelled_or_timedout: Mapped[bool] = mapped_column(Boolean, default=False)
    queue_reason: Mapped[str | None] = mapped_column(Text)
    # Set by runs/cancel (or a job timeout); the run's driver acts on it.
    cancel_requested: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=now_utc, index=True)
    start_time: Mapped[datetime | None] = mapped_column()
    end_time: Mapped[datetime | None] = mapped_column()
    # {job_cluster_key: cluster_id} of the clusters this run created and ends.
    job_clusters: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    # The control-plane process that drives the run (None once it ended).
    owner: Mapped[str | None] = mapped_column(String(64))
    repair_history: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    notified: Mapped[list[str]] = mapped_column(JSON, default=list)


class JobTaskRun(Base):
    """One attempt of one task (or of one for_each iteration) of a job run."""

    __tablename__ = "job_task_runs"

    run_id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=False)
    job_run_id: Mapped[int] = mapped_column(
        _ID, ForeignKey("job_runs.run_id", ondelete="CASCADE"), index=True
    )
    task_key: Mapped[str] = mapped_column(String(100))
    # Iterations of a for_each task point at its task run and carry their index and input.
    parent_task_run_id: Mapped[int | None] = mapped_column(_ID, index=True)
    iteration: Mapped[int | None] = mapped_column()
    input: Mapped[str | None] = mapped_column(Text)
    attempt_number: Mapped[int] = mapped_column(default=0)
    original_attempt_run_id: Mapped[int | None] = mapped_column(_ID)
    # False once a retry or a repair replaced this attempt.
    current: Mapped[bool] = mapped_column(Boolean, default=True)
    repair_id: Mapped[int | None] = mapped_column(_ID)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    life_cycle_state: Mapped[str] = mapped_column(String(32), default="PENDING")
    result_state: Mapped[str | None] = mapped_column(String(48))
    state_message: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=now_utc)
    start_time: Mapped[datetime | None] = mapped_column()
    # When the task began executing (after its cluster and context were ready).
    running_at: Mapped[datetime | None] = mapped_column()
    end_time: Mapped[datetime | None] = mapped_column()
    retry_at: Mapped[datetime | None] = mapped_column()
    executor: Mapped[str | None] = mapped_column(String(64))
    # Set by runs/cancel naming this task run; its run's driver acts on it.
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    cluster_id: Mapped[str | None] = mapped_column(String(64))
    checkpoint: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    task_values: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    resolved: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    condition_outcome: Mapped[str | None] = mapped_column(String(8))


class JobTaskOutput(Base):
    """What get-output and export return for a task run: the exit value, logs, the error,
    and the notebook with its outputs."""

    __tablename__ = "job_task_outputs"

    run_id: Mapped[int] = mapped_column(
        _ID, ForeignKey("job_task_runs.run_id", ondelete="CASCADE"), primary_key=True
    )
    output: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    notebook: Mapped[dict[str, Any] | None] = mapped_column(JSON)
