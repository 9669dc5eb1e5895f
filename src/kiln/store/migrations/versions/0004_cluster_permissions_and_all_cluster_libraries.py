"""cluster permissions and libraries for all clusters

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21 02:50:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("cluster_libraries", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("for_all_clusters", sa.Boolean(), server_default=sa.false(), nullable=False)
        )

    op.create_table(
        "cluster_permissions",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("cluster_id", sa.String(length=64), nullable=False),
        sa.Column("principal_type", sa.String(length=32), nullable=False),
        sa.Column("principal", sa.String(length=255), nullable=False),
        sa.Column("permission_level", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["cluster_id"],
            ["clusters.cluster_id"],
            name=op.f("fk_cluster_permissions_cluster_id_clusters"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cluster_permissions")),
        sa.UniqueConstraint(
            "cluster_id",
            "principal_type",
            "principal",
            name=op.f("uq_cluster_permissions_cluster_id"),
        ),
    )
    with op.batch_alter_table("cluster_permissions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_cluster_permissions_cluster_id"), ["cluster_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("cluster_permissions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cluster_permissions_cluster_id"))
    op.drop_table("cluster_permissions")
    with op.batch_alter_table("cluster_libraries", schema=None) as batch_op:
        batch_op.drop_column("for_all_clusters")
