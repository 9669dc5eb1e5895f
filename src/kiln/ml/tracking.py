"""The real MLflow tracking server, loaded inside Kiln on first use.

MLflow's handlers read their store URIs from environment variables (that is how `mlflow server`
hands them to its workers), so loading sets those for this process and then imports
`mlflow.server.fastapi_app`, which takes seconds: it happens once, in a thread, on the first
request to the ML area, never at server start.

Where the store lives: with SQLite, a separate file `mlflow.db` in the data dir (MLflow's Alembic
version table would collide with Kiln's in one file); with PostgreSQL, the schema `mlflow` of
Kiln's own database (MLflow's tables and version table are created there through the
connection's search_path).
"""

from __future__ import annotations

import asyncio
import os
import warnings
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

__all__ = ["ARTIFACT_ROOT", "ASGIApp", "MlflowTracking", "mlflow_store_uri"]

# The ASGI signature, spelled out: domain code does not import the web framework.
ASGIApp = Callable[
    [
        MutableMapping[str, Any],
        Callable[[], Awaitable[MutableMapping[str, Any]]],
        Callable[[MutableMapping[str, Any]], Awaitable[None]],
    ],
    Awaitable[None],
]

# Run artifact URIs `dbfs:/databricks/mlflow-tracking/<exp>/<run>/artifacts` make the client
# write them through the Files API under /WorkspaceInternal/Mlflow/Artifacts (see artifacts.py).
ARTIFACT_ROOT = "dbfs:/databricks/mlflow-tracking"
MLFLOW_SCHEMA = "mlflow"


def mlflow_store_uri(database_url: str | None, data_dir: Path) -> str:
    """The synchronous SQLAlchemy URL of MLflow's tracking and registry store."""
    if not database_url:
        return f"sqlite:///{data_dir / 'mlflow.db'}"
    if database_url.startswith(("postgresql", "postgres:")):
        rest = database_url.split("://", 1)[1]
        sep = "&" if "?" in rest else "?"
        options = quote(f"-csearch_path={MLFLOW_SCHEMA}")
        return f"postgresql+psycopg://{rest}{sep}options={options}"
    return database_url


def _create_schema(store_uri: str) -> None:
    # MLflow creates its tables but not the schema they go in.
    if not store_uri.startswith("postgresql"):
        return
    import sqlalchemy

    engine = sqlalchemy.create_engine(store_uri)
    try:
        with engine.begin() as conn:
            conn.execute(sqlalchemy.text(f"CREATE SCHEMA IF NOT EXISTS {MLFLOW_SCHEMA}"))
    finally:
        engine.dispose()


class MlflowTracking:
    """MLflow's ASGI app and stores for one Kiln server, loaded on the first call."""

    def __init__(self, store_uri: str) -> None:
        self.store_uri = store_uri
        self._app: ASGIApp | None = None
        self._lock = asyncio.Lock()

    async def app(self) -> ASGIApp:
        """MLflow's server app, loading it (and migrating its store) on the first call."""
        if self._app is None:
            async with self._lock:
                if self._app is None:
                    self._app = await asyncio.to_thread(self._load)
        return self._app

    def has_store(self) -> bool:
        """Whether MLflow's store may hold anything yet (without loading MLflow)."""
        if self._app is not None or not self.store_uri.startswith("sqlite:///"):
            return True
        return Path(self.store_uri[len("sqlite:///") :]).exists()

    async def registry_store(self) -> Any:
        """MLflow's model registry store (an mlflow SqlAlchemyStore) for the UC registry."""
        await self.app()
        return await asyncio.to_thread(_registry_store)

    async def tracking_store(self) -> Any:
        """MLflow's tracking store (an mlflow SqlAlchemyStore)."""
        await self.app()
        return await asyncio.to_thread(_tracking_store)

    def _load(self) -> ASGIApp:
        _create_schema(self.store_uri)
        os.environ["_MLFLOW_SERVER_FILE_STORE"] = self.store_uri
        os.environ["_MLFLOW_SERVER_REGISTRY_STORE"] = self.store_uri
        os.environ["_MLFLOW_SERVER_ARTIFACT_ROOT"] = ARTIFACT_ROOT
        os.environ["_MLFLOW_SERVER_SERVE_ARTIFACTS"] = "false"
        # Kiln's own middleware authenticates every request before it reaches MLflow; MLflow's
        # host and CORS checks would refuse hosts Kiln is legitimately reached by.
        os.environ["MLFLOW_SERVER_DISABLE_SECURITY_MIDDLEWARE"] = "true"
        with warnings.catch_warnings():
            # Starlette's WSGI shim, which MLflow still uses, warns on import.
            warnings.simplefilter("ignore")
            from mlflow.server import fastapi_app

        _tracking_store()
        _registry_store()
        app: ASGIApp = fastapi_app.app
        return app


def _tracking_store() -> Any:
    from mlflow.server import handlers

    return handlers._get_tracking_store()


def _registry_store() -> Any:
    from mlflow.server import handlers

    return handlers._get_model_registry_store()
