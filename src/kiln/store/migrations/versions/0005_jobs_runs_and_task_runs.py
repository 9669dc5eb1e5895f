"""jobs, runs and task runs

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-21 03:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "job_runs",
        sa.Column(
            "run_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=False,
            nullable=False,
        ),
        sa.Column("job_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("run_name", sa.String(length=4096), nullable=False),
        sa.Column("run_type", sa.String(length=32), nullable=False),
        sa.Column("trigger", sa.String(length=32), nullable=False),
        sa.Column(
            "parent_run_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column(
            "parent_task_run_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=True,
        ),
        sa.Column("creator_user_name", sa.String(length=255), nullable=False),
        sa.Column("run_as_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("run_as_user_name", sa.String(length=255), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("job_parameters", sa.JSON(), nullable=False),
        sa.Column("overriding_parameters", sa.JSON(), nullable=True),
        sa.Column("idempotency_key", sa.String(length=100), nullable=True),
        sa.Column("life_cycle_state", sa.String(length=32), nullable=False),
        sa.Column("result_state", sa.String(length=48), nullable=True),
        sa.Column("state_message", sa.Text(), nullable=False),
        sa.Column("user_cancelled_or_timedout", sa.Boolean(), nullable=False),
        sa.Column("queue_reason", sa.Text(), nullable=True),
        sa.Column("cancel_requested", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("start_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("job_clusters", sa.JSON(), nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=True),
        sa.Column("repair_history", sa.JSON(), nullable=False),
        sa.Column("notified", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_as_id"],
            ["users.id"],
            name=op.f("fk_job_runs_run_as_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("run_id", name=op.f("pk_job_runs")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_job_runs_idempotency_key")),
    )
    with op.batch_alter_table("job_runs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_job_runs_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_job_runs_job_id"), ["job_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_job_runs_life_cycle_state"), ["life_cycle_state"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_job_runs_parent_run_id"), ["parent_run_id"], unique=False
        )

    op.create_table(
        "jobs",
        sa.Column(
            "job_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=False,
            nullable=False,
        ),
        sa.Column(
            "creator_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("creator_user_name", sa.String(length=255), nullable=False),
        sa.Column("run_as_user_name", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=4096), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_fire_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_fired_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["creator_id"], ["users.id"], name=op.f("fk_jobs_creator_id_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("job_id", name=op.f("pk_jobs")),
    )
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_jobs_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_jobs_next_fire_at"), ["next_fire_at"], unique=False)

    op.create_table(
        "job_task_runs",
        sa.Column(
            "run_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=False,
            nullable=False,
        ),
        sa.Column(
            "job_run_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("task_key", sa.String(length=100), nullable=False),
        sa.Column(
            "parent_task_run_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=True,
        ),
        sa.Column("iteration", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("input", sa.Text(), nullable=True),
        sa.Column(
            "attempt_number", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "original_attempt_run_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=True,
        ),
        sa.Column("current", sa.Boolean(), nullable=False),
        sa.Column("repair_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("life_cycle_state", sa.String(length=32), nullable=False),
        sa.Column("result_state", sa.String(length=48), nullable=True),
        sa.Column("state_message", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("start_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("running_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("retry_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("executor", sa.String(length=64), nullable=True),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("cluster_id", sa.String(length=64), nullable=True),
        sa.Column("checkpoint", sa.JSON(), nullable=False),
        sa.Column("task_values", sa.JSON(), nullable=False),
        sa.Column("resolved", sa.JSON(), nullable=True),
        sa.Column("condition_outcome", sa.String(length=8), nullable=True),
        sa.ForeignKeyConstraint(
            ["job_run_id"],
            ["job_runs.run_id"],
            name=op.f("fk_job_task_runs_job_run_id_job_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run_id", name=op.f("pk_job_task_runs")),
    )
    with op.batch_alter_table("job_task_runs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_job_task_runs_job_run_id"), ["job_run_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_job_task_runs_parent_task_run_id"), ["parent_task_run_id"], unique=False
        )

    op.create_table(
        "job_task_outputs",
        sa.Column("run_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("output", sa.JSON(), nullable=False),
        sa.Column("notebook", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["job_task_runs.run_id"],
            name=op.f("fk_job_task_outputs_run_id_job_task_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run_id", name=op.f("pk_job_task_outputs")),
    )


def downgrade() -> None:
    op.drop_table("job_task_outputs")
    with op.batch_alter_table("job_task_runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_job_task_runs_parent_task_run_id"))
        batch_op.drop_index(batch_op.f("ix_job_task_runs_job_run_id"))

    op.drop_table("job_task_runs")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_jobs_next_fire_at"))
        batch_op.drop_index(batch_op.f("ix_jobs_created_at"))

    op.drop_table("jobs")
    with op.batch_alter_table("job_runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_job_runs_parent_run_id"))
        batch_op.drop_index(batch_op.f("ix_job_runs_life_cycle_state"))
        batch_op.drop_index(batch_op.f("ix_job_runs_job_id"))
        batch_op.drop_index(batch_op.f("ix_job_runs_created_at"))

    op.drop_table("job_runs")
