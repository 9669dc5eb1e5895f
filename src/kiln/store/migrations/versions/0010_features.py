"""ML features: feature tables and their lineage (producers and consumers)

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-21 08:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "feature_tables",
        sa.Column("name", sa.String(length=767), nullable=False),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("primary_keys", sa.JSON(), nullable=False),
        sa.Column("timestamp_keys", sa.JSON(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("creator", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("online_stores", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_feature_tables")),
        sa.UniqueConstraint("id", name=op.f("uq_feature_tables_id")),
    )
    op.create_table(
        "feature_lineage",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("table_name", sa.String(length=767), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("ref", sa.String(length=1024), nullable=False),
        sa.Column("detail", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["table_name"],
            ["feature_tables.name"],
            name=op.f("fk_feature_lineage_table_name_feature_tables"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feature_lineage")),
        sa.UniqueConstraint(
            "table_name",
            "role",
            "kind",
            "ref",
            "detail",
            name=op.f("uq_feature_lineage_table_name"),
        ),
    )
    with op.batch_alter_table("feature_lineage", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_feature_lineage_table_name"), ["table_name"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("feature_lineage", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_feature_lineage_table_name"))
    op.drop_table("feature_lineage")
    op.drop_table("feature_tables")
