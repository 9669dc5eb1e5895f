"""Instance pools end to end with databricks-sdk against a real `kiln up`.

One pool of real warm instances (single-node driver runtimes with Spark up) serves the
clusters here; a full pool queues clusters in arrival order, a fail-fast cluster ends as
Databricks' would, and every process an instance started is found by its folder tag and must
be gone after a pool delete, a terminate and a clean stop of the server.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import httpx
import psutil
import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import InvalidParameterValue, NotFound
from databricks.sdk.service.compute import (
    ClusterDetails,
    InstancePoolState,
    State,
)

from kiln.compute.driver_client import DriverClient
from support import Server, assert_error, start_server, stop_server_process

SMALL = "kiln.test.small"
RUNTIME = "16.4.x-scala2.13"
WAIT = timedelta(minutes=8)
SINGLE = {"spark.databricks.cluster.profile": "singleNode", "spark.master": "local[*]"}
TAGS = {"ResourceClass": "SingleNode"}
ENV = {
    "KILN_COMPUTE_NODE_TYPES": json.dumps(
        [
            {"node_type_id": SMALL, "num_cores": 1, "memory_mb": 1024},
            {"node_type_id": "kiln.test.medium", "num_cores": 2, "memory_mb": 2048},
        ]
    ),
    "KILN_COMPUTE_SUPERVISOR_INTERVAL_SECONDS": "1",
    "KILN_COMPUTE_AUTOTERMINATION_MINUTE_SECONDS": "1",
    "KILN_COMPUTE_STOP_GRACE_SECONDS": "3",
}

pytestmark = pytest.mark.slow


def tagged(prefix: str) -> list[psutil.Process]:
    """Live processes whose cluster tag starts with `prefix` (a folder path)."""
    found = []
    for proc in psutil.process_iter():
        try:
            home = proc.environ().get("KILN_CLUSTER_HOME", "")
            if home.startswith(prefix) and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except psutil.Error:
            continue
    return found


def kill_tagged(prefix: str) -> None:
    """Stop, by PID, whatever a failed test left running."""
    for proc in tagged(prefix):
        try:
            proc.kill()
        except psutil.Error:
            continue
    psutil.wait_procs(tagged(prefix), timeout=10)


def wait_for(check: Callable[[], Any], what: str, timeout: float = 480) -> Any:
    """Poll until `check()` is truthy (a deadline, not a measurement)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.5)


def runtime_handle(server: Server, cluster_id: str) -> dict[str, Any]:
    """The cluster's recorded runtime (control URL, secrets file, processes)."""
    with sqlite3.connect(server.data_dir / "kiln.db") as db:
        row = db.execute(
            "SELECT control_url, secret_path, handle FROM cluster_runtimes WHERE cluster_id = ?",
            (cluster_id,),
        ).fetchone()
    assert row is not None
    return {"control_url": row[0], "secret_path": row[1], "handle": json.loads(row[2])}


def smoke_job(server: Server, cluster_id: str, tasks: int = 3) -> int:
    """Run a Spark job on the cluster through its driver's control endpoint."""
    runtime = runtime_handle(server, cluster_id)
    client = DriverClient.from_files(runtime["control_url"], runtime["secret_path"])
    return int(asyncio.run(client.smoke_job(tasks, 0))["count"])


def instance_processes(server: Server) -> list[psutil.Process]:
    """Processes of pool instances (their folders are `pi-*` beside the clusters')."""
    return tagged(str(server.data_dir.resolve() / "clusters" / "pi-"))


def pool_cluster(w: WorkspaceClient, pool_id: str, name: str, **extra: Any) -> str:
    conf = {**SINGLE, **extra.pop("spark_conf", {})}
    return w.clusters.create(
        cluster_name=name,
        spark_version=RUNTIME,
        instance_pool_id=pool_id,
        num_workers=0,
        spark_conf=conf,
        custom_tags=TAGS,
        **extra,
    ).cluster_id


def wait_state(w: WorkspaceClient, cluster_id: str, *states: State) -> ClusterDetails:
    return wait_for(  # type: ignore[no-any-return]
        lambda: (d := w.clusters.get(cluster_id)).state in states and d,
        f"{cluster_id} to reach {states}",
    )


# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pool_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server of our own: small node types, second-scale knobs."""
    srv = start_server(tmp_path_factory.mktemp("pools") / "data", env=ENV)
    prefix = str(srv.data_dir.resolve() / "clusters")
    try:
        yield srv
    finally:
        code = stop_server_process(srv.process)
        leftovers = [p.pid for p in tagged(prefix)]
        kill_tagged(prefix)
    assert code == 0
    assert leftovers == [], "a clean stop of the server left pool or cluster processes running"


@pytest.fixture(scope="module")
def w(pool_server: Server) -> WorkspaceClient:
    return WorkspaceClient(host=pool_server.url, token=pool_server.token, auth_type="pat")


@pytest.fixture(scope="module")
def http(pool_server: Server) -> Iterator[httpx.Client]:
    with pool_server.client() as client:
        yield client


@pytest.fixture(scope="module")
def pool(w: WorkspaceClient) -> str:
    """A pool of at most 2 instances, one kept warm."""
    created = w.instance_pools.create(
        instance_pool_name=f"warm-{os.getpid()}",
        node_type_id=SMALL,
        min_idle_instances=1,
        max_capacity=2,
        idle_instance_autotermination_minutes=10,
        preloaded_spark_versions=[RUNTIME],
        custom_tags={"team": "kiln"},
    )
    assert created.instance_pool_id is not None
    return created.instance_pool_id


# --- API and bad input (no Spark) -----------------------------------------------------------


def test_bad_input(w: WorkspaceClient, http: httpx.Client) -> None:
    base = {"instance_pool_name": f"bad-{os.getpid()}", "node_type_id": SMALL}
    for body, field in (
        ({**base, "node_type_id": "m5.huge"}, "node_type_id"),
        ({**base, "min_idle_instances": 3, "max_capacity": 2}, "min_idle_instances"),
        ({**base, "min_idle_instances": -1}, "min_idle_instances"),
        ({**base, "max_capacity": -1}, "max_capacity"),
        ({**base, "idle_instance_autotermination_minutes": -1}, "idle_instance"),
        ({"node_type_id": SMALL}, "instance_pool_name"),
    ):
        error = assert_error(
            http.post("/api/2.0/instance-pools/create", json=body), 400, "INVALID_PARAMETER_VALUE"
        )
        assert field in error["message"]
    with pytest.raises(NotFound):
        w.instance_pools.get("0101-000000-nopool00-pool-missing0")
    assert_error(
        http.post("/api/2.0/instance-pools/delete", json={"instance_pool_id": "nope"}),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )
    with pytest.raises(InvalidParameterValue, match="instance_pool_id"):
        w.clusters.create(
            cluster_name="no-pool", spark_version=RUNTIME, num_workers=0, instance_pool_id="nope"
        )


def test_create_edit_get_list_delete_without_instances(
    w: WorkspaceClient, http: httpx.Client
) -> None:
    name = f"cold-{os.getpid()}"
    pool_id = w.instance_pools.create(instance_pool_name=name, node_type_id=SMALL).instance_pool_id
    assert pool_id is not None
    got = w.instance_pools.get(pool_id)
    assert got.instance_pool_name == name and got.node_type_id == SMALL
    assert got.state == InstancePoolState.ACTIVE
    assert got.min_idle_instances == 0 and got.max_capacity is None
    assert got.default_tags is not None and got.default_tags["InstancePoolId"] == pool_id
    assert got.stats is not None and got.stats.idle_count == 0
    # A second pool of the same name is refused.
    assert_error(
        http.post(
            "/api/2.0/instance-pools/create",
            json={"instance_pool_name": name, "node_type_id": SMALL},
        ),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    w.instance_pools.edit(pool_id, f"{name}-2", SMALL, max_capacity=5, custom_tags={"a": "b"})
    got = w.instance_pools.get(pool_id)
    assert got.instance_pool_name == f"{name}-2" and got.max_capacity == 5
    assert got.custom_tags == {"a": "b"}
    error = assert_error(
        http.post(
            "/api/2.0/instance-pools/edit",
            json={"instance_pool_id": pool_id, "instance_pool_name": name, "node_type_id": "x"},
        ),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    assert "node_type_id" in error["message"]
    assert pool_id in {p.instance_pool_id for p in w.instance_pools.list()}
    w.instance_pools.delete(pool_id)
    assert w.instance_pools.get(pool_id).state == InstancePoolState.DELETED
    assert pool_id not in {p.instance_pool_id for p in w.instance_pools.list()}
    with pytest.raises(NotFound):
        w.instance_pools.edit(pool_id, name, SMALL)
    # A deleted pool cannot serve new clusters.
    with pytest.raises(InvalidParameterValue, match="instance_pool_id"):
        pool_cluster(w, pool_id, "on-deleted")


# --- warm instances, capacity, fail-fast, delete --------------------------------------------


def test_warm_instance_serves_a_cluster(w: WorkspaceClient, pool_server: Server, pool: str) -> None:
    wait_for(lambda: (w.instance_pools.get(pool).stats or _none()).idle_count == 1, "a warm one")
    assert len(instance_processes(pool_server)) >= 1
    cid = pool_cluster(w, pool, "warm-1")
    details = wait_state(w, cid, State.RUNNING, State.TERMINATED)
    assert details.state == State.RUNNING, details.termination_reason
    assert details.instance_pool_id == pool
    # No cold start: the warm instance's driver was attached (the event says which).
    messages = [
        (e.details.driver_state_message or "") if e.details else "" for e in w.clusters.events(cid)
    ]
    assert any("Took warm instance" in m for m in messages), messages
    assert runtime_handle(pool_server, cid)["handle"]["instance_id"].startswith("pi-")
    assert smoke_job(pool_server, cid) == 3
    stats = w.instance_pools.get(pool).stats
    assert stats is not None and stats.used_count == 1


def test_full_pool_queues_then_fail_fast_then_serves(
    w: WorkspaceClient, pool_server: Server, pool: str
) -> None:
    first = next(c.cluster_id for c in w.clusters.list() if c.cluster_name == "warm-1")
    assert first is not None
    second = pool_cluster(w, pool, "warm-2")
    assert wait_state(w, second, State.RUNNING, State.TERMINATED).state == State.RUNNING
    # The pool is at max_capacity 2: the third cluster waits, visibly, instead of failing.
    third = pool_cluster(w, pool, "warm-3")
    waiting = wait_for(
        lambda: (
            "waiting for pool capacity" in ((d := w.clusters.get(third)).state_message or "") and d
        ),
        "the third cluster to queue",
    )
    assert waiting.state == State.PENDING
    assert waiting.state_message.startswith("waiting for pool capacity: 0 ahead")
    # Databricks' behaviour on request: fail at once with the Databricks reason.
    fast = pool_cluster(w, pool, "fail-fast", spark_conf={"kiln.pool.failFast": "true"})
    failed = wait_state(w, fast, State.TERMINATED)
    assert failed.termination_reason is not None
    assert failed.termination_reason.code is not None
    assert failed.termination_reason.code.value == "INSTANCE_POOL_MAX_CAPACITY_REACHED"
    assert w.clusters.get(third).state == State.PENDING
    # Capacity frees when the first terminates: the waiting cluster starts.
    w.clusters.delete(first)
    assert wait_state(w, third, State.RUNNING, State.TERMINATED).state == State.RUNNING
    assert smoke_job(pool_server, third, tasks=2) == 2
    for cid in (second, third):
        w.clusters.delete(cid)
    for cid in (second, third):
        wait_state(w, cid, State.TERMINATED)


def test_delete_pool_leaves_no_instance_process(
    w: WorkspaceClient, pool_server: Server, pool: str
) -> None:
    wait_for(lambda: (w.instance_pools.get(pool).stats or _none()).idle_count == 1, "a refill")
    assert instance_processes(pool_server)
    w.instance_pools.delete(pool)
    wait_for(lambda: not instance_processes(pool_server), "idle instances to stop", timeout=60)
    folders = list((pool_server.data_dir.resolve() / "clusters").glob("pi-*"))
    wait_for(
        lambda: not list((pool_server.data_dir.resolve() / "clusters").glob("pi-*")),
        f"instance folders to go ({folders})",
        timeout=30,
    )


def _none() -> Any:
    class Empty:
        idle_count = None

    return Empty()


def test_pool_ids_are_databricks_shaped(pool: str) -> None:
    assert "-pool-" in pool and len(pool.split("-")) == 5
