"""ML: serving endpoints and their scorer processes

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-21 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "serving_endpoints",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("creator", sa.String(length=255), nullable=False),
        sa.Column("config", sa.JSON(), nullable=True),
        sa.Column("pending_config", sa.JSON(), nullable=True),
        sa.Column("ready", sa.String(length=32), nullable=False),
        sa.Column("config_update", sa.String(length=32), nullable=False),
        sa.Column("state_message", sa.Text(), nullable=True),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_serving_endpoints")),
        sa.UniqueConstraint("name", name=op.f("uq_serving_endpoints_name")),
    )
    op.create_table(
        "serving_scorer_processes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("endpoint_id", sa.String(length=36), nullable=False),
        sa.Column("served_entity", sa.String(length=255), nullable=False),
        sa.Column("config_version", sa.Integer(), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["endpoint_id"],
            ["serving_endpoints.id"],
            name=op.f("fk_serving_scorer_processes_endpoint_id_serving_endpoints"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_serving_scorer_processes")),
    )
    with op.batch_alter_table("serving_scorer_processes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_serving_scorer_processes_endpoint_id"), ["endpoint_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("serving_scorer_processes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_serving_scorer_processes_endpoint_id"))
    op.drop_table("serving_scorer_processes")
    op.drop_table("serving_endpoints")
