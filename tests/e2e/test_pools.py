"""Instance pools end to end with databricks-sdk against a real `kiln up`.

One pool of real warm instances (single-node driver runtimes with Spark up) serves the
clusters here; a full pool queues clusters in arrival order, a fail-fast cluster ends as
Databricks' would, and every process an instance started is found by its folder tag and must
be gone after a pool delete, a terminate and a clean stop of the server.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import psutil
import pytest
from compute_support import (
    MEDIUM,
    RUNTIME,
    SINGLE_NODE_CONF,
    SINGLE_NODE_TAGS,
    SMALL,
    ComputeUser,
    cluster_home,
    compute_env,
    instance_processes,
    kill_tagged,
    running_compute_server,
    runtime_handle,
    smoke_job,
    tagged,
    unique,
    wait_for,
    wait_state,
)
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import InvalidParameterValue, NotFound, PermissionDenied
from databricks.sdk.service.compute import InstancePoolState, InstancePoolStats, State

from support import Server, assert_error, start_server, stop_server_process

# One idle_instance_autotermination "minute" is 2 s.
ENV = compute_env(autotermination_minute_seconds="1", pool_idle_minute_seconds="2")

pytestmark = pytest.mark.slow


def pool_cluster(w: WorkspaceClient, pool_id: str, name: str, **extra: Any) -> str:
    conf = {**SINGLE_NODE_CONF, **extra.pop("spark_conf", {})}
    cid: str = w.clusters.create(
        cluster_name=name,
        spark_version=extra.pop("spark_version", RUNTIME),
        instance_pool_id=pool_id,
        num_workers=0,
        spark_conf=conf,
        custom_tags=SINGLE_NODE_TAGS,
        **extra,
    ).cluster_id
    return cid


def stats(w: WorkspaceClient, pool_id: str) -> InstancePoolStats:
    found = w.instance_pools.get(pool_id).stats
    assert found is not None
    return found


def messages(w: WorkspaceClient, cluster_id: str) -> list[str]:
    """The free-text messages of a cluster's events, newest first."""
    return [
        (e.details.driver_state_message or "") if e.details else ""
        for e in w.clusters.events(cluster_id)
    ]


# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compute_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server of our own: small node types, second-scale knobs."""
    with running_compute_server(tmp_path_factory.mktemp("pools") / "data", ENV) as srv:
        yield srv


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


def test_warm_instance_serves_a_cluster(
    w: WorkspaceClient, compute_server: Server, pool: str
) -> None:
    wait_for(lambda: stats(w, pool).idle_count == 1, "a warm one")
    assert len(instance_processes(compute_server)) >= 1
    cid = pool_cluster(w, pool, "warm-1")
    details = wait_state(w, cid, State.RUNNING, State.TERMINATED)
    assert details.state == State.RUNNING, details.termination_reason
    assert details.instance_pool_id == pool
    # No cold start: the warm instance's driver was attached (the event says which).
    said = messages(w, cid)
    assert any("Took warm instance" in m for m in said), said
    assert runtime_handle(compute_server, cid)["handle"]["instance_id"].startswith("pi-")
    assert smoke_job(compute_server, cid, tasks=3) == 3
    assert stats(w, pool).used_count == 1


def test_full_pool_queues_then_fail_fast_then_serves(
    w: WorkspaceClient, compute_server: Server, pool: str
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
    assert smoke_job(compute_server, third, tasks=2) == 2
    for cid in (second, third):
        w.clusters.delete(cid)
    for cid in (second, third):
        wait_state(w, cid, State.TERMINATED)


def test_cluster_with_its_own_conf_and_env_starts_cold(
    w: WorkspaceClient, http: httpx.Client, compute_server: Server, pool: str
) -> None:
    wait_for(lambda: stats(w, pool).idle_count == 1, "a warm instance")
    warm_ids = _idle_instance_ids(compute_server, pool)
    cid = pool_cluster(
        w,
        pool,
        unique("own-conf"),
        spark_conf={"spark.sql.shuffle.partitions": "3"},
        spark_env_vars={"TEAM": "kiln"},
    )
    details = wait_state(w, cid, State.RUNNING, State.TERMINATED)
    assert details.state == State.RUNNING, details.termination_reason
    # A started driver cannot take a new environment or SparkConf: it starts cold, in the
    # pool's capacity, and says why.
    said = messages(w, cid)
    assert any("Starting cold inside instance pool" in m and "TEAM" in m for m in said), said
    assert not any("Took warm instance" in m for m in said)
    assert stats(w, pool).used_count == 1
    runtime = [p for p in tagged(cluster_home(compute_server, cid)) if _is_runtime(p)]
    assert len(runtime) == 1 and runtime[0].environ()["TEAM"] == "kiln"
    state = json.loads((cluster_home(compute_server, cid) / "driver-state.json").read_text())
    env = http.get(
        f"/driver-proxy-api/o/1/{cid}/{state['ui_port']}/api/v1/applications/"
        f"{state['app_id']}/environment"
    ).json()
    assert dict(env["sparkProperties"])["spark.sql.shuffle.partitions"] == "3"
    assert smoke_job(compute_server, cid) == 2
    # The warm instance it reserved was retired (a started driver serves one cluster).
    assert not set(warm_ids) & set(_idle_instance_ids(compute_server, pool))
    w.clusters.delete(cid)
    wait_state(w, cid, State.TERMINATED)


def test_preloaded_spark_version_decides_warm_or_cold(w: WorkspaceClient, pool: str) -> None:
    assert w.instance_pools.get(pool).preloaded_spark_versions == [RUNTIME]
    wait_for(lambda: stats(w, pool).idle_count == 1, "a warm instance")
    cid = pool_cluster(w, pool, unique("other-runtime"), spark_version="15.4.x-scala2.12")
    said = wait_for(
        lambda: [m for m in messages(w, cid) if "Starting cold" in m], "the cold start's reason"
    )
    assert "15.4.x-scala2.12 is not preloaded" in said[0]
    w.clusters.delete(cid)
    wait_state(w, cid, State.TERMINATED)
    with pytest.raises(InvalidParameterValue, match="preloaded_spark_versions"):
        w.instance_pools.create(
            instance_pool_name=unique("two-versions"),
            node_type_id=SMALL,
            preloaded_spark_versions=[RUNTIME, "15.4.x-scala2.12"],
        )


def test_driver_and_workers_from_different_pools(
    w: WorkspaceClient, http: httpx.Client, compute_server: Server
) -> None:
    drivers = w.instance_pools.create(
        instance_pool_name=unique("drivers"), node_type_id=MEDIUM, max_capacity=1
    ).instance_pool_id
    workers = w.instance_pools.create(
        instance_pool_name=unique("workers"), node_type_id=SMALL, max_capacity=2
    ).instance_pool_id
    assert drivers is not None and workers is not None
    # A pool cluster's nodes are its pools' instances: another node type is refused.
    body = {
        "cluster_name": "mismatch",
        "spark_version": RUNTIME,
        "num_workers": 1,
        "instance_pool_id": workers,
        "driver_instance_pool_id": drivers,
    }
    for field, value in (("node_type_id", MEDIUM), ("driver_node_type_id", SMALL)):
        r = http.post("/api/2.1/clusters/create", json={**body, field: value})
        assert field in assert_error(r, 400, "INVALID_PARAMETER_VALUE")["message"]
    r = http.post("/api/2.1/clusters/create", json={**body, "instance_pool_id": None})
    assert "instance_pool_id" in assert_error(r, 400, "INVALID_PARAMETER_VALUE")["message"]
    cid = w.clusters.create(
        cluster_name=unique("two-pools"),
        spark_version=RUNTIME,
        num_workers=1,
        instance_pool_id=workers,
        driver_instance_pool_id=drivers,
    ).cluster_id
    details = wait_state(w, cid, State.RUNNING, State.TERMINATED)
    assert details.state == State.RUNNING, details.termination_reason
    assert details.node_type_id == SMALL and details.driver_node_type_id == MEDIUM
    assert details.driver_instance_pool_id == drivers and details.instance_pool_id == workers
    assert stats(w, drivers).used_count == 1 and stats(w, workers).used_count == 1
    wait_for(lambda: len(w.clusters.get(cid).executors or []) == 1, "the worker's executor")
    assert smoke_job(compute_server, cid, tasks=2) == 2
    w.clusters.delete(cid)
    wait_state(w, cid, State.TERMINATED)
    wait_for(
        lambda: stats(w, drivers).used_count == 0 and stats(w, workers).used_count == 0,
        "both pools' instances to be released",
    )
    for pool_id in (drivers, workers):
        w.instance_pools.delete(pool_id)


def test_idle_instances_above_the_minimum_retire(
    w: WorkspaceClient, compute_server: Server, pool: str
) -> None:
    wait_for(lambda: stats(w, pool).idle_count == 1, "a warm instance")
    name = w.instance_pools.get(pool).instance_pool_name or ""
    # min_idle_instances 0: the warm one is surplus and retires after one idle "minute".
    w.instance_pools.edit(
        pool,
        name,
        SMALL,
        min_idle_instances=0,
        max_capacity=2,
        idle_instance_autotermination_minutes=1,
    )
    wait_for(lambda: stats(w, pool).idle_count == 0, "the idle instance to retire", timeout=60)
    wait_for(lambda: not instance_processes(compute_server), "its processes to stop", timeout=60)
    # Back to one warm instance for the tests that follow.
    w.instance_pools.edit(
        pool,
        name,
        SMALL,
        min_idle_instances=1,
        max_capacity=2,
        idle_instance_autotermination_minutes=10,
    )


def test_only_admins_create_pools(
    w: WorkspaceClient, make_compute_user: Callable[[], ComputeUser], pool: str
) -> None:
    user = make_compute_user()
    with pytest.raises(PermissionDenied):
        user.sdk.instance_pools.create(instance_pool_name=unique("mine"), node_type_id=SMALL)
    assert_error(
        user.http.post(
            "/api/2.0/instance-pools/create",
            json={"instance_pool_name": unique("mine"), "node_type_id": SMALL},
        ),
        403,
        "PERMISSION_DENIED",
    )
    with pytest.raises(PermissionDenied):
        user.sdk.instance_pools.edit(pool, "taken", SMALL)
    with pytest.raises(PermissionDenied):
        user.sdk.instance_pools.delete(pool)
    # Reading pools needs no permission.
    assert user.sdk.instance_pools.get(pool).instance_pool_id == pool


def test_delete_pool_leaves_no_instance_process(
    w: WorkspaceClient, compute_server: Server, pool: str
) -> None:
    wait_for(lambda: stats(w, pool).idle_count == 1, "a refill")
    assert instance_processes(compute_server)
    w.instance_pools.delete(pool)
    wait_for(lambda: not instance_processes(compute_server), "idle instances to stop", timeout=60)
    folders = list((compute_server.data_dir.resolve() / "clusters").glob("pi-*"))
    wait_for(
        lambda: not list((compute_server.data_dir.resolve() / "clusters").glob("pi-*")),
        f"instance folders to go ({folders})",
        timeout=30,
    )


def test_pool_ids_are_databricks_shaped(pool: str) -> None:
    assert "-pool-" in pool and len(pool.split("-")) == 5


# --- the control plane crashes and comes back ------------------------------------------------


def test_warm_and_lent_instances_are_adopted_after_a_crash(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    data = tmp_path_factory.mktemp("pool-crash") / "data"
    homes = data.resolve() / "clusters"
    srv = start_server(data, env=ENV)
    try:
        w = WorkspaceClient(host=srv.url, token=srv.token, auth_type="pat")
        pool_id = w.instance_pools.create(
            instance_pool_name="crash", node_type_id=SMALL, min_idle_instances=1, max_capacity=2
        ).instance_pool_id
        assert pool_id is not None
        wait_for(lambda: stats(w, pool_id).idle_count == 1, "a warm instance")
        cid = pool_cluster(w, pool_id, "on-a-warm-instance")
        assert wait_state(w, cid, State.RUNNING, State.TERMINATED).state == State.RUNNING
        # The pool refills: one instance lent to the cluster, one idle.
        wait_for(lambda: stats(w, pool_id).idle_count == 1, "the refill")
        idle = _idle_instance_ids(srv, pool_id)
        before = {p.pid for p in tagged(homes)}
        # The control plane dies hard; the instances' processes do not.
        srv.process.kill()
        srv.process.wait(timeout=30)
        assert {p.pid for p in tagged(homes)} == before
        srv = start_server(data, env=ENV)
        w = WorkspaceClient(host=srv.url, token=srv.token, auth_type="pat")
        # Both adopted: the same processes, the same idle instance, the cluster still works.
        after = stats(w, pool_id)
        assert (after.idle_count, after.used_count) == (1, 1)
        assert _idle_instance_ids(srv, pool_id) == idle
        assert {p.pid for p in tagged(homes)} >= before
        assert w.clusters.get(cid).state == State.RUNNING
        assert smoke_job(srv, cid, tasks=2) == 2
        # The adopted idle instance serves the next cluster without a cold start.
        second = pool_cluster(w, pool_id, "on-the-adopted-instance")
        assert wait_state(w, second, State.RUNNING, State.TERMINATED).state == State.RUNNING
        assert runtime_handle(srv, second)["handle"]["instance_id"] == idle[0]
        assert any(f"Took warm instance {idle[0]}" in m for m in messages(w, second))
        assert stop_server_process(srv.process) == 0
        assert tagged(homes) == []
    finally:
        stop_server_process(srv.process)
        kill_tagged(homes)


def _idle_instance_ids(server: Server, pool_id: str) -> list[str]:
    with contextlib.closing(sqlite3.connect(server.data_dir / "kiln.db")) as db:
        rows = db.execute(
            "SELECT instance_id FROM pool_instances WHERE instance_pool_id = ? AND state = 'IDLE'",
            (pool_id,),
        ).fetchall()
    return sorted(r[0] for r in rows)


def _is_runtime(proc: psutil.Process) -> bool:
    try:
        return "kiln.driver.runtime" in proc.cmdline()
    except psutil.Error:
        return False
