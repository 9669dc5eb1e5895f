"""What every end-to-end test of clusters, pools, libraries (and execution contexts) shares.

Plain helpers and fixture factories: a server of a test module's own with compute knobs shrunk
for a 2-core machine (`running_compute_server`), the processes a cluster owns (found by their
`KILN_CLUSTER_HOME` tag), waiting for states, running a Spark job through a driver's control
endpoint, and non-admin users. The module-scoped fixtures built from them (`w`, `http`,
`make_compute_user`) live in `tests/e2e/conftest.py`; each test module defines its own
`compute_server` fixture (with `running_compute_server`) with the settings it needs.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.service.compute import ClusterDetails, State

from kiln.compute.driver_client import DriverClient
from support import Server, start_server, stop_server_process

__all__ = [
    "MEDIUM",
    "RUNTIME",
    "SINGLE_NODE_CONF",
    "SINGLE_NODE_TAGS",
    "SMALL",
    "WAIT",
    "ComputeUser",
    "cluster_home",
    "clusters_dir",
    "compute_env",
    "driver_client",
    "driver_state",
    "gone",
    "instance_processes",
    "kill_tagged",
    "make_user",
    "proxy_get",
    "running_compute_server",
    "runtime_handle",
    "single_node_cluster",
    "skip_without",
    "smoke_job",
    "tagged",
    "unique",
    "wait_for",
    "wait_state",
]

SMALL = "kiln.test.small"
MEDIUM = "kiln.test.medium"
RUNTIME = "16.4.x-scala2.13"
WAIT = timedelta(minutes=8)
SINGLE_NODE_CONF = {"spark.databricks.cluster.profile": "singleNode", "spark.master": "local[*]"}
SINGLE_NODE_TAGS = {"ResourceClass": "SingleNode"}
_names = itertools.count()


def compute_env(**overrides: str) -> dict[str, str]:
    """`KILN_COMPUTE_*` settings for tests: two small node types, second-scale knobs.

    Keys are the settings' names (`supervisor_interval_seconds="1"`); they override the defaults.
    """
    knobs = {
        "node_types": json.dumps(
            [
                {"node_type_id": SMALL, "num_cores": 1, "memory_mb": 1024},
                {"node_type_id": MEDIUM, "num_cores": 2, "memory_mb": 2048},
            ]
        ),
        "supervisor_interval_seconds": "1",
        "stop_grace_seconds": "3",
        **overrides,
    }
    return {f"KILN_COMPUTE_{key.upper()}": value for key, value in knobs.items()}


def unique(prefix: str) -> str:
    """A name no other test (or test process) uses."""
    return f"{prefix}-{os.getpid()}-{next(_names)}"


# --- processes ------------------------------------------------------------------------------


def tagged(home_prefix: Path | str) -> list[psutil.Process]:
    """Live processes whose cluster tag starts with `home_prefix` (a folder path)."""
    found = []
    prefix = str(home_prefix)
    for proc in psutil.process_iter():
        try:
            home = proc.environ().get("KILN_CLUSTER_HOME", "")
            if home.startswith(prefix) and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except psutil.Error:
            continue
    return found


def kill_tagged(home_prefix: Path | str) -> None:
    """Stop, by PID, whatever a test left running (SIGKILL: the test already failed)."""
    for proc in tagged(home_prefix):
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(tagged(home_prefix), timeout=10)


def clusters_dir(server: Server) -> Path:
    """Where the server keeps cluster (and pool instance) folders."""
    return server.data_dir.resolve() / "clusters"


def cluster_home(server: Server, cluster_id: str) -> Path:
    """One cluster's folder (its processes carry it as their tag)."""
    return clusters_dir(server) / cluster_id


def instance_processes(server: Server) -> list[psutil.Process]:
    """Processes of pool instances (their folders are `pi-*` beside the clusters')."""
    return tagged(str(clusters_dir(server) / "pi-"))


def gone(server: Server, cluster_id: str) -> bool:
    """Whether no process of the cluster runs."""
    return not tagged(cluster_home(server, cluster_id))


@contextlib.contextmanager
def running_compute_server(data_dir: Path, env: dict[str, str]) -> Iterator[Server]:
    """A `kiln up` of a test module's own; at the end it must stop cleanly and leave no
    cluster or pool process behind (what is left is killed by PID, and the test fails)."""
    srv = start_server(data_dir, env=env)
    homes = clusters_dir(srv)
    try:
        yield srv
    finally:
        code = stop_server_process(srv.process)
        leftovers = [p.pid for p in tagged(homes)]
        kill_tagged(homes)
    assert code == 0
    assert leftovers == [], "a clean stop of the server left Spark processes running"


def single_node_cluster(w: WorkspaceClient, prefix: str) -> ClusterDetails:
    """A started single-node cluster (two shuffle partitions: the machine has two cores)."""
    return w.clusters.create_and_wait(
        cluster_name=unique(prefix),
        spark_version=RUNTIME,
        node_type_id=SMALL,
        num_workers=0,
        spark_conf={**SINGLE_NODE_CONF, "spark.sql.shuffle.partitions": "2"},
        custom_tags=SINGLE_NODE_TAGS,
        timeout=WAIT,
    )


# --- waiting --------------------------------------------------------------------------------


def wait_for(check: Callable[[], Any], what: str, timeout: float = WAIT.total_seconds()) -> Any:
    """Poll until `check()` is truthy (a deadline, not a measurement)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.5)


def wait_state(w: WorkspaceClient, cluster_id: str, *states: State) -> ClusterDetails:
    """Poll every half second (the SDK's back-off can outwait a short-lived state)."""
    details: ClusterDetails = wait_for(
        lambda: (d := w.clusters.get(cluster_id)).state in states and d,
        f"{cluster_id} to reach {states}",
    )
    return details


# --- a cluster's driver ---------------------------------------------------------------------


def runtime_handle(server: Server, cluster_id: str) -> dict[str, Any]:
    """The cluster's recorded runtime (control URL, secrets file, processes)."""
    with contextlib.closing(sqlite3.connect(server.data_dir / "kiln.db")) as db:
        row = db.execute(
            "SELECT control_url, secret_path, handle FROM cluster_runtimes WHERE cluster_id = ?",
            (cluster_id,),
        ).fetchone()
    assert row is not None, f"{cluster_id} has no runtime record"
    return {"control_url": row[0], "secret_path": row[1], "handle": json.loads(row[2])}


def driver_state(server: Server, cluster_id: str) -> dict[str, Any]:
    """The driver runtime's state file of a cluster started cold (ports, app id, pid)."""
    data: dict[str, Any] = json.loads(
        (cluster_home(server, cluster_id) / "driver-state.json").read_text()
    )
    return data


def driver_client(server: Server, cluster_id: str, timeout: float = 300) -> DriverClient:
    """A client of the cluster's driver control endpoint (cold-started or pool-attached)."""
    runtime = runtime_handle(server, cluster_id)
    return DriverClient.from_files(runtime["control_url"], runtime["secret_path"], timeout=timeout)


def smoke_job(server: Server, cluster_id: str, tasks: int = 2, task_ms: int = 0) -> int:
    """Run a small Spark job on the cluster through its driver's control endpoint."""
    result = asyncio.run(driver_client(server, cluster_id).smoke_job(tasks, task_ms))
    return int(result["count"])


def proxy_get(client: httpx.Client, cluster_id: str, port: int, path: str) -> httpx.Response:
    """GET a cluster's Spark UI (or REST API) through the control plane's proxy."""
    return client.get(f"/driver-proxy-api/o/1/{cluster_id}/{port}/{path}")


# --- users ----------------------------------------------------------------------------------


@dataclass
class ComputeUser:
    """A non-admin user of a compute server, with their clients."""

    name: str
    token: str
    http: httpx.Client
    sdk: WorkspaceClient


def make_user(server: Server, admin: httpx.Client, prefix: str = "user") -> tuple[str, str]:
    """A new non-admin user of `server`: (user_name, token)."""
    name = unique(prefix) + "@example.com"
    r = admin.post("/api/2.0/preview/scim/v2/Users", json={"userName": name})
    assert r.status_code == 201, r.text
    r = admin.post(
        "/api/2.0/token-management/on-behalf-of/tokens",
        json={"application_id": r.json()["id"], "comment": "compute tests"},
    )
    assert r.status_code == 200, r.text
    return name, str(r.json()["token_value"])


def skip_without(tool: str) -> None:
    """Skip the test, saying why, when a command-line tool it needs is not installed."""
    import shutil

    if shutil.which(tool) is None:
        pytest.skip(f"`{tool}` is not installed on this machine")
