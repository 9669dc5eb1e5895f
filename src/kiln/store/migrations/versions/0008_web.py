"""web workspace: notebook revisions and UI state

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-21 09:00:00.000000
"""

from collections.abc import Sequence

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Reserved for its issue's tables; kept in the chain so revisions never collide.
    pass


def downgrade() -> None:
    pass
