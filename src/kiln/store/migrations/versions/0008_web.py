"""web workspace: notebook revisions and UI state

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-21 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "web_notebook_revisions",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("object_id", _ID, nullable=False),
        sa.Column("path", sa.String(length=4096), nullable=False),
        sa.Column("created_by", _ID, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cells", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["users.id"],
            name=op.f("fk_web_notebook_revisions_created_by_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["object_id"],
            ["workspace_objects.id"],
            name=op.f("fk_web_notebook_revisions_object_id_workspace_objects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_web_notebook_revisions")),
    )
    with op.batch_alter_table("web_notebook_revisions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_web_notebook_revisions_object_id"), ["object_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("web_notebook_revisions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_web_notebook_revisions_object_id"))
    op.drop_table("web_notebook_revisions")
