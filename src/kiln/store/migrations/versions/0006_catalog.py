"""catalogs, schemas, tables and volumes (Unity Catalog shaped)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-21 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _audit() -> list[sa.Column[object]]:
    return [
        sa.Column("owner", sa.String(length=255), nullable=False),
        sa.Column("created_by", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=255), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
    ]


def _child(table: str, *columns: sa.Column[object]) -> None:
    op.create_table(
        table,
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("schema_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        *columns,
        *_audit(),
        sa.ForeignKeyConstraint(
            ["schema_id"],
            ["uc_schemas.id"],
            name=op.f(f"fk_{table}_schema_id_uc_schemas"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{table}")),
        sa.UniqueConstraint("schema_id", "name", name=op.f(f"uq_{table}_schema_id")),
    )
    with op.batch_alter_table(table, schema=None) as batch_op:
        batch_op.create_index(batch_op.f(f"ix_{table}_schema_id"), ["schema_id"], unique=False)


def upgrade() -> None:
    op.create_table(
        "uc_catalogs",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("storage_root", sa.Text(), nullable=True),
        sa.Column("properties", sa.JSON(), nullable=False),
        *_audit(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_uc_catalogs")),
        sa.UniqueConstraint("name", name=op.f("uq_uc_catalogs_name")),
    )
    op.create_table(
        "uc_schemas",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("catalog_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("storage_root", sa.Text(), nullable=True),
        sa.Column("properties", sa.JSON(), nullable=False),
        *_audit(),
        sa.ForeignKeyConstraint(
            ["catalog_id"],
            ["uc_catalogs.id"],
            name=op.f("fk_uc_schemas_catalog_id_uc_catalogs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_uc_schemas")),
        sa.UniqueConstraint("catalog_id", "name", name=op.f("uq_uc_schemas_catalog_id")),
    )
    with op.batch_alter_table("uc_schemas", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_uc_schemas_catalog_id"), ["catalog_id"], unique=False)
    _child(
        "uc_tables",
        sa.Column("table_type", sa.String(length=32), nullable=False),
        sa.Column("data_source_format", sa.String(length=32), nullable=False),
        sa.Column("storage_location", sa.Text(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("properties", sa.JSON(), nullable=False),
    )
    _child(
        "uc_volumes",
        sa.Column("volume_type", sa.String(length=32), nullable=False),
        sa.Column("storage_location", sa.Text(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
    )


def downgrade() -> None:
    for table in ("uc_volumes", "uc_tables"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(batch_op.f(f"ix_{table}_schema_id"))
        op.drop_table(table)
    with op.batch_alter_table("uc_schemas", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_uc_schemas_catalog_id"))
    op.drop_table("uc_schemas")
    op.drop_table("uc_catalogs")
