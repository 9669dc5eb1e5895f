"""ML registry: model version activities (transitions, requests, comments) and webhooks

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-21 08:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ml_registry_activities",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("model_name", sa.String(length=256), nullable=False),
        sa.Column("version", sa.String(length=32), nullable=False),
        sa.Column("activity_type", sa.String(length=32), nullable=False),
        sa.Column("from_stage", sa.String(length=32), nullable=True),
        sa.Column("to_stage", sa.String(length=32), nullable=True),
        sa.Column("user_name", sa.String(length=255), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("system_comment", sa.Text(), nullable=True),
        sa.Column("is_open", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ml_registry_activities")),
    )
    with op.batch_alter_table("ml_registry_activities", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_ml_registry_activities_model_name"), ["model_name"], unique=False
        )
    op.create_table(
        "ml_registry_webhooks",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("model_name", sa.String(length=256), nullable=True),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("http_url_spec", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ml_registry_webhooks")),
    )
    with op.batch_alter_table("ml_registry_webhooks", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_ml_registry_webhooks_model_name"), ["model_name"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("ml_registry_webhooks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ml_registry_webhooks_model_name"))
    op.drop_table("ml_registry_webhooks")
    with op.batch_alter_table("ml_registry_activities", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ml_registry_activities_model_name"))
    op.drop_table("ml_registry_activities")
