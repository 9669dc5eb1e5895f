"""Fixtures of the compute tests (clusters, pools, libraries, execution contexts).

Each such test module defines a module-scoped `compute_server` (a server of its own, built with
`compute_support.compute_server`); these fixtures are the clients of that server.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest
from compute_support import ComputeUser, make_user
from databricks.sdk import WorkspaceClient

from support import Server


@pytest.fixture(scope="module")
def w(compute_server: Server) -> WorkspaceClient:
    """databricks-sdk against the module's compute server, as its admin."""
    return WorkspaceClient(host=compute_server.url, token=compute_server.token, auth_type="pat")


@pytest.fixture(scope="module")
def http(compute_server: Server) -> Iterator[httpx.Client]:
    """An httpx client of the module's compute server, as its admin."""
    with compute_server.client() as client:
        yield client


@pytest.fixture(scope="module")
def make_compute_user(
    compute_server: Server, http: httpx.Client
) -> Iterator[Callable[[], ComputeUser]]:
    """A factory of non-admin users of the compute server, each with an httpx and an SDK
    client."""
    opened: list[httpx.Client] = []

    def make() -> ComputeUser:
        name, token = make_user(compute_server, http)
        client = compute_server.client(token)
        opened.append(client)
        sdk = WorkspaceClient(host=compute_server.url, token=token, auth_type="pat")
        return ComputeUser(name=name, token=token, http=client, sdk=sdk)

    yield make
    for client in opened:
        client.close()
