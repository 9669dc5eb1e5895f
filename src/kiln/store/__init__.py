"""The metadata store: SQLAlchemy 2 models, the async engine and Alembic migrations.

Invariants: every schema change is an Alembic migration that runs on SQLite and PostgreSQL;
timestamps are timezone-aware UTC; the store imports nothing from the layers above it.
"""

from kiln.store.db import Database
from kiln.store.migrate import HEAD_REVISION, upgrade

__all__ = ["HEAD_REVISION", "Database", "upgrade"]
