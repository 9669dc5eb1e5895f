"""Store fixtures: a URL per backend per test (the PostgreSQL cluster is in tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from store.postgres_cluster import PostgresCluster


@pytest.fixture(scope="session")
def postgres_url(postgres_cluster: PostgresCluster) -> str:
    """The `postgresql://` URL of an empty database on the session's cluster."""
    return postgres_cluster.create_database("kiln")


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A plain (sync-form) URL of an empty database: a SQLite file, or a fresh PG database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'kiln.db'}"
    cluster: PostgresCluster = request.getfixturevalue("postgres_cluster")
    return cluster.create_database()
