"""Bring a database to the newest schema with Alembic, skipping Alembic when already there."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

__all__ = ["HEAD_REVISION", "MIGRATIONS_DIR", "sync_url", "upgrade"]

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
# The newest revision in migrations/versions. A test checks it against Alembic's own view,
# so the server can skip importing Alembic (~0.3 s) on every start of an up-to-date store.
HEAD_REVISION = "0010"


def sync_url(url: str) -> str:
    """The synchronous form of an async URL (Alembic runs synchronously)."""
    u = make_url(url)
    if u.drivername == "sqlite+aiosqlite":
        u = u.set(drivername="sqlite")
    return u.render_as_string(hide_password=False)


def _current_revision(url: str) -> tuple[str | None, bool]:
    """The stamped revision, and whether the database holds no tables at all."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            empty = not inspect(conn).get_table_names()
            try:
                revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
            except Exception:
                revision = None
            return revision, empty
    finally:
        engine.dispose()


def _create_at_head(url: str) -> None:
    """Create an empty database's schema from the models and stamp it at HEAD_REVISION.

    Running every migration on a new data dir costs seconds of the first start; the models
    are the same schema (a store test compares them with the migrated one), so a new store
    is created in one step and later migrations apply to it as to any other.
    """
    from kiln.store.models import Base

    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            Base.metadata.create_all(conn)
            # The table Alembic itself would create, with the same constraint name.
            conn.execute(
                text(
                    "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL, "
                    "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))"
                )
            )
            conn.execute(
                text("INSERT INTO alembic_version (version_num) VALUES (:v)"), {"v": HEAD_REVISION}
            )
    finally:
        engine.dispose()


def upgrade(url: str) -> None:
    """Migrate the database at `url` (async or sync form) to HEAD_REVISION."""
    url = sync_url(url)
    revision, empty = _current_revision(url)
    if revision == HEAD_REVISION:
        return
    if revision is None and empty:
        _create_at_head(url)
        return
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    command.upgrade(cfg, "head")
