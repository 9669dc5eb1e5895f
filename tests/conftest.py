"""Shared fixtures: one Kiln server per test session, started on loopback and stopped by PID."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import httpx
import pytest

from store.postgres_cluster import NO_POSTGRES, PostgresCluster, find_pg_bin, running_postgres
from support import Server, start_server, stop_server_process


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The one Kiln server every end-to-end test of the session shares."""
    srv = start_server(tmp_path_factory.mktemp("kiln") / "data")
    try:
        yield srv
    finally:
        stop_server_process(srv.process)


@pytest.fixture(scope="session")
def admin(server: Server) -> Iterator[httpx.Client]:
    """An httpx client authenticated as the first admin."""
    with server.client() as client:
        yield client


@pytest.fixture(scope="session")
def mlflow_area(admin: httpx.Client) -> None:
    """The ML area loaded: its first request imports MLflow's server and migrates its store,
    which on a busy machine can outlast a client's own timeout (databricks-sdk then retries a
    create that did happen, and sees RESOURCE_ALREADY_EXISTS)."""
    r = admin.get("/api/2.0/mlflow/experiments/search", params={"max_results": 1}, timeout=600)
    assert r.status_code == 200, r.text


@pytest.fixture(scope="session")
def sdk(server: Server):  # type: ignore[no-untyped-def]
    """databricks-sdk's WorkspaceClient against the shared server."""
    from databricks.sdk import WorkspaceClient

    return WorkspaceClient(host=server.url, token=server.token, auth_type="pat")


@pytest.fixture(scope="session")
def make_user(admin: httpx.Client) -> Callable[..., tuple[str, str]]:
    """A factory of non-admin users: returns (user_name, token)."""
    counter = iter(range(10**6))

    def make(prefix: str = "user") -> tuple[str, str]:
        name = f"{prefix}{next(counter)}-{os.getpid()}@example.com"
        r = admin.post("/api/2.0/preview/scim/v2/Users", json={"userName": name})
        assert r.status_code == 201, r.text
        uid = r.json()["id"]
        r = admin.post(
            "/api/2.0/token-management/on-behalf-of/tokens",
            json={"application_id": uid, "comment": "test"},
        )
        assert r.status_code == 200, r.text
        return name, r.json()["token_value"]

    return make


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    """A PostgreSQL cluster on 127.0.0.1 built from this machine's binaries (skip if none)."""
    bin_dir = find_pg_bin()
    if bin_dir is None:
        pytest.skip(NO_POSTGRES)
    with running_postgres(bin_dir) as cluster:
        yield cluster
