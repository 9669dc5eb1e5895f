"""Clusters on real Apache Spark, end to end with databricks-sdk against a real `kiln up`.

The clusters here are real: a single-node cluster is a driver runtime with Spark in local
mode; a cluster with workers is a Spark standalone master, worker JVMs and executors. They
run on their own server (its node types and time knobs shrunk for a 2-core machine) and are
shared through module fixtures; every process they start is found by its cluster tag and
must be gone by the end.
"""

from __future__ import annotations

import os
import signal
import sqlite3
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from compute_support import (
    RUNTIME,
    SMALL,
    WAIT,
    ComputeUser,
    cluster_home,
    compute_env,
    driver_state,
    gone,
    kill_tagged,
    proxy_get,
    running_compute_server,
    smoke_job,
    tagged,
    unique,
    wait_for,
    wait_state,
)
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import (
    InvalidParameterValue,
    InvalidState,
    PermissionDenied,
    ResourceDoesNotExist,
)
from databricks.sdk.service.compute import (
    AutoScale,
    ClusterAccessControlRequest,
    ClusterDetails,
    ClusterLogConf,
    ClusterPermissionLevel,
    DbfsStorageInfo,
    EventType,
    GetEventsOrder,
    InitScriptInfo,
    ListClustersFilterBy,
    State,
    UpdateClusterResource,
    WorkspaceStorageInfo,
)
from databricks.sdk.service.workspace import ImportFormat

from support import Server, assert_error, start_server, stop_server_process

ENV = compute_env(
    # One autotermination "minute" is 2 s: autotermination_minutes=10 stops after ~20 s idle.
    autotermination_minute_seconds="2",
    autotermination_interval_seconds="1",
    log_delivery_interval_seconds="3",
    autoscale_up_seconds="2",
    autoscale_down_seconds="5",
)


# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compute_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server of our own: small node types, second-scale knobs, nothing shared."""
    with running_compute_server(tmp_path_factory.mktemp("clusters") / "data", ENV) as srv:
        yield srv


@pytest.fixture(scope="module")
def single(w: WorkspaceClient) -> ClusterDetails:
    """A single-node cluster (Spark local mode), logs delivered to DBFS."""
    return w.clusters.create_and_wait(
        cluster_name=unique("single"),
        spark_version=RUNTIME,
        node_type_id=SMALL,
        num_workers=0,
        spark_conf={
            "spark.databricks.cluster.profile": "singleNode",
            "spark.master": "local[*]",
            "spark.sql.shuffle.partitions": "2",
        },
        custom_tags={"ResourceClass": "SingleNode", "team": "kiln"},
        spark_env_vars={"TEAM": "kiln"},
        cluster_log_conf=ClusterLogConf(dbfs=DbfsStorageInfo(destination="dbfs:/cluster-logs")),
        timeout=WAIT,
    )


@pytest.fixture(scope="module")
def workers(w: WorkspaceClient) -> ClusterDetails:
    """A standalone cluster: a master, two worker JVMs, two executors."""
    return w.clusters.create_and_wait(
        cluster_name=unique("workers"),
        spark_version=RUNTIME,
        node_type_id=SMALL,
        num_workers=2,
        timeout=WAIT,
    )


# --- single node ----------------------------------------------------------------------------


def test_single_node_cluster_runs_spark(
    w: WorkspaceClient, compute_server: Server, single: ClusterDetails
) -> None:
    cid = single.cluster_id
    assert cid is not None
    details = w.clusters.get(cid)
    assert details.state == State.RUNNING
    assert details.spark_version == RUNTIME
    assert details.node_type_id == SMALL and details.driver_node_type_id == SMALL
    assert details.num_workers == 0
    assert details.custom_tags == {"ResourceClass": "SingleNode", "team": "kiln"}
    assert details.default_tags is not None
    assert details.default_tags["ClusterId"] == cid
    assert details.default_tags["Creator"] == "admin@kiln.local"
    assert details.driver is not None and details.driver.private_ip == "127.0.0.1"
    assert not details.executors
    assert details.spark_context_id is not None
    assert details.creator_user_name == "admin@kiln.local"
    assert smoke_job(compute_server, cid, tasks=3) == 3
    # spark_env_vars and the interpreter reach the driver's processes.
    runtime = [
        p for p in tagged(cluster_home(compute_server, cid)) if "kiln.driver.runtime" in p.cmdline()
    ]
    assert len(runtime) == 1
    env = runtime[0].environ()
    assert env["TEAM"] == "kiln" and env["DB_CLUSTER_ID"] == cid and env["PYSPARK_PYTHON"]


def test_list_filters_and_pages(
    w: WorkspaceClient, http: httpx.Client, single: ClusterDetails
) -> None:
    cid = single.cluster_id
    running = ListClustersFilterBy(cluster_states=[State.RUNNING])
    assert cid in {c.cluster_id for c in w.clusters.list(filter_by=running)}
    terminated = ListClustersFilterBy(cluster_states=[State.TERMINATED])
    assert cid not in {c.cluster_id for c in w.clusters.list(filter_by=terminated)}
    # The SDK pages with page_token; one per page still lists everything.
    everything = {c.cluster_id for c in w.clusters.list()}
    assert {c.cluster_id for c in w.clusters.list(page_size=1)} == everything
    # The legacy 2.0 list returns every cluster at once.
    legacy = http.get("/api/2.0/clusters/list").json()["clusters"]
    assert {c["cluster_id"] for c in legacy} == everything
    assert_error(
        http.get("/api/2.1/clusters/list", params={"filter_by.cluster_states": "NAPPING"}),
        400,
        "INVALID_PARAMETER_VALUE",
    )


def test_node_types_and_spark_versions(w: WorkspaceClient) -> None:
    types = {n.node_type_id: n for n in w.clusters.list_node_types().node_types or []}
    assert types[SMALL].num_cores == 1 and types[SMALL].memory_mb == 1024
    versions = {v.key: v.name for v in w.clusters.spark_versions().versions or []}
    assert RUNTIME in versions and "Apache Spark 4.3.0" in (versions[RUNTIME] or "")
    assert w.clusters.select_spark_version(latest=True, long_term_support=True)
    assert w.clusters.select_node_type(local_disk=True) == SMALL


def test_spark_ui_only_through_the_proxy(
    compute_server: Server,
    http: httpx.Client,
    make_compute_user: Callable[[], ComputeUser],
    single: ClusterDetails,
) -> None:
    cid = single.cluster_id
    assert cid is not None
    state = driver_state(compute_server, cid)
    ui = state["ui_port"]
    apps = proxy_get(http, cid, ui, "api/v1/applications")
    assert apps.status_code == 200, apps.text
    assert [a["id"] for a in apps.json()] == [state["app_id"]]
    env = proxy_get(http, cid, ui, f"api/v1/applications/{state['app_id']}/environment").json()
    props = dict(env["sparkProperties"])
    assert props["spark.authenticate"] == "true"
    assert "redacted" in props["spark.authenticate.secret"]
    assert props["spark.driver.bindAddress"] == "127.0.0.1"
    page = http.get(f"/driver-proxy/o/1/{cid}/{ui}/jobs/")
    assert page.status_code == 200 and "<html" in page.text.lower()
    # Every port of the cluster listens on loopback only.
    listening = [
        c.laddr
        for p in tagged(cluster_home(compute_server, cid))
        for c in p.net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN
    ]
    assert listening
    assert {a.ip for a in listening} <= {"127.0.0.1", "::ffff:127.0.0.1"}
    # Only the cluster's own UI ports, only for those who may manage it, only with a token.
    control = state["control_port"]
    assert_error(proxy_get(http, cid, control, "health"), 400, "INVALID_PARAMETER_VALUE")
    assert_error(proxy_get(http, "0000-000000-nothere0", ui, ""), 400, "INVALID_PARAMETER_VALUE")
    other = make_compute_user().http
    assert_error(proxy_get(other, cid, ui, "api/v1/applications"), 403, "PERMISSION_DENIED")
    anonymous = httpx.get(
        f"{compute_server.url}/driver-proxy-api/o/1/{cid}/{ui}/api/v1/applications"
    )
    assert_error(anonymous, 401, "UNAUTHENTICATED")


def test_logs_are_delivered_to_dbfs(w: WorkspaceClient, single: ClusterDetails) -> None:
    cid = single.cluster_id
    folder = f"dbfs:/cluster-logs/{cid}/driver"

    def delivered() -> set[str]:
        try:
            return {Path(f.path or "").name for f in w.dbfs.list(folder)}
        except ResourceDoesNotExist:
            return set()

    names = wait_for(
        lambda: {"stdout", "stderr", "log4j-active.log"} <= delivered() and delivered(), "logs"
    )
    assert "log4j-active.log" in names
    with w.dbfs.download(f"{folder}/log4j-active.log") as f:
        assert b"SparkContext" in f.read()
    status = w.clusters.get(cid or "").cluster_log_status
    assert status is not None and status.last_attempted and not status.last_exception


def test_restart(w: WorkspaceClient, compute_server: Server, single: ClusterDetails) -> None:
    cid = single.cluster_id or ""
    before = w.clusters.get(cid)
    old_app = driver_state(compute_server, cid)["app_id"]
    after = w.clusters.restart_and_wait(cid, timeout=WAIT)
    assert after.state == State.RUNNING
    assert (after.last_restarted_time or 0) > (before.last_restarted_time or 0)
    assert driver_state(compute_server, cid)["app_id"] != old_app
    assert smoke_job(compute_server, cid) == 2


def test_events_page_through(
    w: WorkspaceClient, http: httpx.Client, single: ClusterDetails
) -> None:
    cid = single.cluster_id or ""
    everything = list(w.clusters.events(cid))
    small_pages = list(w.clusters.events(cid, limit=2))
    assert [(e.timestamp, e.type) for e in small_pages] == [
        (e.timestamp, e.type) for e in everything
    ]
    types = [e.type for e in everything]
    assert types[-1] == EventType.CREATING
    for expected in (EventType.RUNNING, EventType.RESTARTING, EventType.DRIVER_HEALTHY):
        assert expected in types
    timestamps = [e.timestamp or 0 for e in everything]
    assert timestamps == sorted(timestamps, reverse=True)
    ascending = list(w.clusters.events(cid, order=GetEventsOrder.ASC, limit=3))
    assert [e.type for e in ascending] == list(reversed(types))
    only = list(w.clusters.events(cid, event_types=[EventType.RESTARTING]))
    assert only and all(e.type == EventType.RESTARTING for e in only)
    # page_token / page_size, the newer style.
    seen, token = [], None
    while True:
        body: dict[str, Any] = {"cluster_id": cid, "page_size": 2}
        if token:
            body["page_token"] = token
        page = http.post("/api/2.1/clusters/events", json=body).json()
        seen.extend((e["timestamp"], e["type"]) for e in page["events"])
        token = page.get("next_page_token")
        if not token:
            break
    assert len(seen) == len(everything)
    for bad in ({"order": "SIDEWAYS"}, {"limit": 501}, {"page_token": "garbage!"}):
        r = http.post("/api/2.1/clusters/events", json={"cluster_id": cid, **bad})
        assert_error(r, 400, "INVALID_PARAMETER_VALUE")


def test_pin_and_unpin(
    w: WorkspaceClient,
    make_compute_user: Callable[[], ComputeUser],
    single: ClusterDetails,
) -> None:
    cid = single.cluster_id or ""
    w.clusters.pin(cid)
    pinned = ListClustersFilterBy(is_pinned=True)
    assert cid in {c.cluster_id for c in w.clusters.list(filter_by=pinned)}
    w.clusters.unpin(cid)
    assert cid not in {c.cluster_id for c in w.clusters.list(filter_by=pinned)}
    types = [e.type for e in w.clusters.events(cid)]
    assert EventType.PINNED in types and EventType.UNPINNED in types
    other = make_compute_user().http
    assert_error(
        other.post("/api/2.1/clusters/pin", json={"cluster_id": cid}), 403, "PERMISSION_DENIED"
    )
    assert_error(
        other.post("/api/2.1/clusters/delete", json={"cluster_id": cid}), 403, "PERMISSION_DENIED"
    )


def test_update_without_restart_and_bad_masks(
    w: WorkspaceClient, http: httpx.Client, compute_server: Server, single: ClusterDetails
) -> None:
    cid = single.cluster_id or ""
    app = driver_state(compute_server, cid)["app_id"]
    name = unique("renamed")
    # Name, tags and autotermination need no restart: the same Spark application goes on.
    w.clusters.update(
        cid,
        "cluster_name,custom_tags,autotermination_minutes",
        cluster=UpdateClusterResource(
            cluster_name=name,
            custom_tags={"ResourceClass": "SingleNode", "team": "updated"},
            autotermination_minutes=0,
        ),
    )
    details = w.clusters.get(cid)
    assert details.state == State.RUNNING
    assert details.cluster_name == name
    assert details.custom_tags == {"ResourceClass": "SingleNode", "team": "updated"}
    assert details.spark_conf == single.spark_conf
    assert driver_state(compute_server, cid)["app_id"] == app
    edited = list(w.clusters.events(cid, event_types=[EventType.EDITED]))
    assert edited and edited[0].details is not None
    assert edited[0].details.attributes is not None
    assert edited[0].details.attributes.cluster_name == name
    # A mask names fields of the cluster; anything else is refused, naming it.
    for mask, named in (
        ("", "update_mask"),
        ("cluster_name,nonsense", "nonsense"),
        ("spark_conf.spark.sql.shuffle.partitions", "spark_conf"),
        ("autoscale.most_workers", "autoscale.most_workers"),
        ("cluster_name,cluster_name", "cluster_name"),
        ("cluster_id", "cluster_id"),
    ):
        r = http.post(
            "/api/2.1/clusters/update",
            json={"cluster_id": cid, "update_mask": mask, "cluster": {"cluster_name": "x"}},
        )
        assert named in assert_error(r, 400, "INVALID_PARAMETER_VALUE")["message"], mask
    with pytest.raises(InvalidParameterValue, match="autotermination_minutes"):
        w.clusters.update(
            cid,
            "autotermination_minutes",
            cluster=UpdateClusterResource(autotermination_minutes=5),
        )
    r = http.post(
        "/api/2.1/clusters/update",
        json={"cluster_id": cid, "update_mask": "cluster_name", "cluster": "not an object"},
    )
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")
    missing = {"cluster_id": "0101-000000-nothere1", "update_mask": "cluster_name"}
    assert_error(
        http.post("/api/2.1/clusters/update", json=missing), 400, "INVALID_PARAMETER_VALUE"
    )
    assert w.clusters.get(cid).cluster_name == name


def test_update_spark_conf_restarts(
    w: WorkspaceClient, http: httpx.Client, compute_server: Server, single: ClusterDetails
) -> None:
    cid = single.cluster_id or ""
    app = driver_state(compute_server, cid)["app_id"]
    conf = {**(single.spark_conf or {}), "spark.sql.shuffle.partitions": "5"}
    w.clusters.update(cid, "spark_conf", cluster=UpdateClusterResource(spark_conf=conf))
    assert w.clusters.get(cid).state == State.RESTARTING
    # Databricks refuses an update while the cluster is not RUNNING or TERMINATED.
    with pytest.raises(InvalidState):
        w.clusters.update(cid, "cluster_name", cluster=UpdateClusterResource(cluster_name="x"))
    details = w.clusters.wait_get_cluster_running(cid, timeout=WAIT)
    assert details.spark_conf == conf
    state = driver_state(compute_server, cid)
    assert state["app_id"] != app
    env = proxy_get(
        http, cid, state["ui_port"], f"api/v1/applications/{state['app_id']}/environment"
    )
    assert dict(env.json()["sparkProperties"])["spark.sql.shuffle.partitions"] == "5"
    assert smoke_job(compute_server, cid) == 2


def test_cluster_permissions(
    w: WorkspaceClient,
    http: httpx.Client,
    compute_server: Server,
    make_compute_user: Callable[[], ComputeUser],
    single: ClusterDetails,
) -> None:
    cid = single.cluster_id or ""
    levels = w.clusters.get_permission_levels(cid).permission_levels or []
    assert [lv.permission_level for lv in levels] == [
        ClusterPermissionLevel.CAN_ATTACH_TO,
        ClusterPermissionLevel.CAN_RESTART,
        ClusterPermissionLevel.CAN_MANAGE,
    ]
    owner = w.clusters.get_permissions(cid)
    assert owner.object_id == f"/clusters/{cid}" and owner.object_type == "cluster"
    acl = {(a.user_name or a.group_name): a for a in owner.access_control_list or []}
    assert acl["admin@kiln.local"].all_permissions is not None
    assert acl["admin@kiln.local"].all_permissions[0].permission_level == (
        ClusterPermissionLevel.CAN_MANAGE
    )
    admins = acl["admins"].all_permissions or []
    assert admins[0].inherited is True

    user = make_compute_user()
    ui = driver_state(compute_server, cid)["ui_port"]
    # No permission: every cluster operation is refused; reading the cluster is not.
    assert user.sdk.clusters.get(cid).cluster_id == cid
    for call in (
        lambda: user.sdk.clusters.restart(cid),
        lambda: user.sdk.clusters.delete(cid),
        lambda: user.sdk.clusters.update(
            cid, "cluster_name", cluster=UpdateClusterResource(cluster_name="mine")
        ),
        lambda: user.sdk.clusters.get_permissions(cid),
        lambda: user.sdk.clusters.set_permissions(cid),
    ):
        with pytest.raises(PermissionDenied):
            call()
    assert_error(proxy_get(user.http, cid, ui, "api/v1/applications"), 403, "PERMISSION_DENIED")

    # CAN_ATTACH_TO: the Spark UI and the permissions are readable; restarting is not.
    w.clusters.set_permissions(
        cid,
        access_control_list=[
            ClusterAccessControlRequest(
                user_name=user.name, permission_level=ClusterPermissionLevel.CAN_ATTACH_TO
            )
        ],
    )
    assert proxy_get(user.http, cid, ui, "api/v1/applications").status_code == 200
    assert user.sdk.clusters.get_permissions(cid).object_id == f"/clusters/{cid}"
    with pytest.raises(PermissionDenied):
        user.sdk.clusters.restart(cid)

    # CAN_RESTART through a group (PATCH adds to the list): restart works, resize does not.
    group = unique("restarters")
    r = http.post(
        "/api/2.0/preview/scim/v2/Groups",
        json={"displayName": group, "members": [{"value": _user_id(http, user.name)}]},
    )
    assert r.status_code == 201, r.text
    after = w.clusters.update_permissions(
        cid,
        access_control_list=[
            ClusterAccessControlRequest(
                group_name=group, permission_level=ClusterPermissionLevel.CAN_RESTART
            )
        ],
    )
    names = {a.user_name or a.group_name for a in after.access_control_list or []}
    assert {user.name, group} <= names
    with pytest.raises(PermissionDenied):
        user.sdk.clusters.resize(cid, num_workers=1)
    user.sdk.clusters.restart(cid)
    w.clusters.wait_get_cluster_running(cid, timeout=WAIT)

    # PUT replaces the whole list: the user's own grant goes, the group's CAN_MANAGE stays.
    w.clusters.set_permissions(
        cid,
        access_control_list=[
            ClusterAccessControlRequest(
                group_name=group, permission_level=ClusterPermissionLevel.CAN_MANAGE
            )
        ],
    )
    names = {
        a.user_name or a.group_name
        for a in w.clusters.get_permissions(cid).access_control_list or []
    }
    assert user.name not in names and group in names
    user.sdk.clusters.update(
        cid, "autotermination_minutes", cluster=UpdateClusterResource(autotermination_minutes=0)
    )
    w.clusters.set_permissions(cid, access_control_list=[])
    with pytest.raises(PermissionDenied):
        user.sdk.clusters.restart(cid)

    # Bad input names the entry; unknown clusters are 404.
    base = f"/api/2.0/permissions/clusters/{cid}"
    for entry, named in (
        ({"user_name": user.name, "permission_level": "CAN_FLY"}, "permission_level"),
        ({"user_name": "nobody@example.com", "permission_level": "CAN_RESTART"}, "user_name"),
        ({"group_name": "no-such-group", "permission_level": "CAN_RESTART"}, "group_name"),
        ({"service_principal_name": "sp", "permission_level": "CAN_RESTART"}, "service_principal"),
        (
            {"user_name": user.name, "group_name": group, "permission_level": "CAN_RESTART"},
            "access_control_list[0]",
        ),
    ):
        for method in ("PUT", "PATCH"):
            r = http.request(method, base, json={"access_control_list": [entry]})
            assert named in assert_error(r, 400, "INVALID_PARAMETER_VALUE")["message"]
    assert_error(
        http.put(base, json={"access_control_list": "everyone"}), 400, "INVALID_PARAMETER_VALUE"
    )
    assert_error(
        http.get("/api/2.0/permissions/clusters/0101-000000-nothere1"),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )


def _user_id(http: httpx.Client, name: str) -> str:
    r = http.get("/api/2.0/preview/scim/v2/Users", params={"filter": f'userName eq "{name}"'})
    assert r.status_code == 200, r.text
    return str(r.json()["Resources"][0]["id"])


def test_killed_driver_terminates_the_cluster(
    w: WorkspaceClient, compute_server: Server, single: ClusterDetails
) -> None:
    cid = single.cluster_id or ""
    pid = driver_state(compute_server, cid)["pid"]
    os.kill(pid, signal.SIGKILL)
    details = w.clusters.wait_get_cluster_terminated(cid, timeout=WAIT)
    assert details.termination_reason is not None
    assert details.termination_reason.code is not None
    assert details.termination_reason.code.value == "DRIVER_UNRESPONSIVE"
    assert f"pid {pid}" in (details.state_message or "")
    unavailable = list(w.clusters.events(cid, event_types=[EventType.DRIVER_UNAVAILABLE]))
    assert unavailable and unavailable[0].details is not None
    assert "exited" in (unavailable[0].details.driver_state_message or "")
    wait_for(lambda: gone(compute_server, cid), "the cluster's processes to go")
    w.clusters.permanent_delete(cid)
    with pytest.raises(ResourceDoesNotExist):
        w.clusters.get(cid)


# --- workers --------------------------------------------------------------------------------


def _roles(server: Server, cluster_id: str) -> dict[str, list[psutil.Process]]:
    roles: dict[str, list[psutil.Process]] = {"worker": [], "executor": [], "master": []}
    for proc in tagged(cluster_home(server, cluster_id)):
        try:
            line = " ".join(proc.cmdline())
        except psutil.Error:
            continue
        if "org.apache.spark.deploy.worker.Worker" in line:
            roles["worker"].append(proc)
        elif "CoarseGrainedExecutorBackend" in line:
            roles["executor"].append(proc)
        elif "org.apache.spark.deploy.master.Master" in line:
            roles["master"].append(proc)
    return roles


@pytest.mark.slow
def test_two_workers_run_real_executors(
    w: WorkspaceClient, http: httpx.Client, compute_server: Server, workers: ClusterDetails
) -> None:
    cid = workers.cluster_id or ""
    details = w.clusters.get(cid)
    assert details.num_workers == 2
    assert details.executors is not None and len(details.executors) == 2
    roles = _roles(compute_server, cid)
    assert len(roles["master"]) == 1 and len(roles["worker"]) == 2
    assert len(roles["executor"]) == 2
    # Each executor is a child of its own worker JVM.
    worker_pids = {p.pid for p in roles["worker"]}
    parents = {p.ppid() for p in roles["executor"]}
    assert parents == worker_pids
    # Spark's own status API, through the control plane, shows the same two executors.
    state = driver_state(compute_server, cid)
    spark = proxy_get(
        http, cid, state["ui_port"], f"api/v1/applications/{state['app_id']}/executors"
    )
    assert spark.status_code == 200, spark.text
    ids = {e["id"] for e in spark.json() if e["id"] != "driver"}
    assert ids == {e.node_id for e in details.executors}
    assert smoke_job(compute_server, cid, tasks=4, task_ms=100) == 4


@pytest.mark.slow
def test_resize(w: WorkspaceClient, compute_server: Server, workers: ClusterDetails) -> None:
    cid = workers.cluster_id or ""
    w.clusters.resize_and_wait(cid, num_workers=1, timeout=WAIT)
    wait_for(lambda: len(w.clusters.get(cid).executors or []) == 1, "one executor")
    wait_for(lambda: len(_roles(compute_server, cid)["worker"]) == 1, "one worker JVM")
    assert w.clusters.get(cid).num_workers == 1
    resizing = list(w.clusters.events(cid, event_types=[EventType.RESIZING]))
    assert resizing and resizing[0].details is not None
    assert resizing[0].details.target_num_workers == 1
    assert smoke_job(compute_server, cid, tasks=2) == 2


@pytest.mark.slow
def test_update_size_only_resizes(
    w: WorkspaceClient, compute_server: Server, workers: ClusterDetails
) -> None:
    cid = workers.cluster_id or ""
    app = driver_state(compute_server, cid)["app_id"]
    w.clusters.update(cid, "num_workers", cluster=UpdateClusterResource(num_workers=2))
    assert w.clusters.get(cid).state == State.RESIZING
    details = w.clusters.wait_get_cluster_running(cid, timeout=WAIT)
    assert details.num_workers == 2
    wait_for(lambda: len(w.clusters.get(cid).executors or []) == 2, "two executors")
    # Resized under the same Spark application: no restart.
    assert driver_state(compute_server, cid)["app_id"] == app
    resizing = list(w.clusters.events(cid, event_types=[EventType.RESIZING]))
    assert resizing[0].details is not None and resizing[0].details.target_num_workers == 2


@pytest.mark.slow
def test_edit_restarts_with_the_new_config(
    w: WorkspaceClient, http: httpx.Client, compute_server: Server, workers: ClusterDetails
) -> None:
    cid = workers.cluster_id or ""
    name = unique("edited")
    w.clusters.edit(
        cid,
        RUNTIME,
        cluster_name=name,
        node_type_id=SMALL,
        num_workers=1,
        spark_conf={"spark.sql.shuffle.partitions": "3"},
    )
    assert w.clusters.get(cid).state == State.RESTARTING
    details = w.clusters.wait_get_cluster_running(cid, timeout=WAIT)
    assert details.cluster_name == name
    assert details.spark_conf == {"spark.sql.shuffle.partitions": "3"}
    state = driver_state(compute_server, cid)
    env = proxy_get(
        http, cid, state["ui_port"], f"api/v1/applications/{state['app_id']}/environment"
    )
    assert dict(env.json()["sparkProperties"])["spark.sql.shuffle.partitions"] == "3"
    edited = list(w.clusters.events(cid, event_types=[EventType.EDITED]))
    assert edited and edited[0].details is not None and edited[0].details.user == "admin@kiln.local"


@pytest.mark.slow
def test_autoscale_follows_load(
    w: WorkspaceClient, compute_server: Server, workers: ClusterDetails
) -> None:
    cid = workers.cluster_id or ""
    w.clusters.resize_and_wait(cid, autoscale=AutoScale(min_workers=1, max_workers=2), timeout=WAIT)
    assert len(_roles(compute_server, cid)["worker"]) == 1
    # A backlog of tasks on one single-core worker: a second worker joins while it runs.
    with ThreadPoolExecutor(1) as pool:
        job = pool.submit(smoke_job, compute_server, cid, 16, 2000)
        wait_for(lambda: len(w.clusters.get(cid).executors or []) == 2, "a second executor")
        assert job.result(timeout=WAIT.total_seconds()) == 16
    upsized = list(w.clusters.events(cid, event_types=[EventType.UPSIZE_COMPLETED]))
    assert upsized and upsized[0].details is not None
    assert upsized[0].details.target_num_workers == 2
    # Quiet again: the extra worker goes.
    wait_for(lambda: len(_roles(compute_server, cid)["worker"]) == 1, "one worker again")
    wait_for(lambda: len(w.clusters.get(cid).executors or []) == 1, "one executor again")
    details = w.clusters.get(cid)
    assert details.autoscale is not None and details.autoscale.max_workers == 2
    assert details.state == State.RUNNING


@pytest.mark.slow
def test_terminate_and_permanent_delete_leave_no_process(
    w: WorkspaceClient, compute_server: Server, workers: ClusterDetails
) -> None:
    cid = workers.cluster_id or ""
    assert not gone(compute_server, cid)
    details = w.clusters.delete_and_wait(cid, timeout=WAIT)
    assert details.state == State.TERMINATED
    assert details.termination_reason is not None and details.termination_reason.code is not None
    assert details.termination_reason.code.value == "USER_REQUEST"
    assert gone(compute_server, cid)
    # Databricks refuses these on a TERMINATED cluster.
    with pytest.raises(InvalidState):
        w.clusters.restart(cid)
    with pytest.raises(InvalidState):
        w.clusters.resize(cid, num_workers=2)
    w.clusters.permanent_delete(cid)
    with pytest.raises(ResourceDoesNotExist):
        w.clusters.get(cid)
    assert cid not in {c.cluster_id for c in w.clusters.list()}
    assert gone(compute_server, cid)
    home = cluster_home(compute_server, cid)
    wait_for(lambda: not home.exists(), "the cluster's files to be removed")


# --- init scripts and autotermination -------------------------------------------------------


@pytest.mark.slow
def test_init_script_then_autotermination(
    w: WorkspaceClient, compute_server: Server, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    script = (
        f'echo "init for $DB_CLUSTER_ID"\necho "$DB_CLUSTER_ID $DB_IS_DRIVER $TEAM" > {marker}\n'
    )
    path = "/Users/admin@kiln.local/init-ok.sh"
    w.workspace.upload(path, script.encode(), format=ImportFormat.AUTO, overwrite=True)
    cid = w.clusters.create(
        cluster_name=unique("idle"),
        spark_version=RUNTIME,
        node_type_id=SMALL,
        num_workers=0,
        autotermination_minutes=10,
        spark_env_vars={"TEAM": "kiln"},
        init_scripts=[InitScriptInfo(workspace=WorkspaceStorageInfo(destination=path))],
        cluster_log_conf=ClusterLogConf(dbfs=DbfsStorageInfo(destination="dbfs:/idle-logs")),
    ).cluster_id
    wait_state(w, cid, State.RUNNING)
    assert marker.read_text().split() == [cid, "TRUE", "kiln"]
    finished = list(w.clusters.events(cid, event_types=[EventType.INIT_SCRIPTS_FINISHED]))
    assert finished and finished[0].details is not None
    scripts = finished[0].details.init_scripts
    assert scripts is not None and scripts.cluster is not None
    assert scripts.cluster[0].status is not None and scripts.cluster[0].status.value == "SUCCEEDED"
    # Nobody uses it: it terminates itself once idle for its autotermination time.
    details = wait_state(w, cid, State.TERMINATED)
    assert details.termination_reason is not None and details.termination_reason.code is not None
    assert details.termination_reason.code.value == "INACTIVITY"
    assert details.termination_reason.parameters == {"inactivity_duration_min": "10"}
    assert gone(compute_server, cid)
    # Its logs, init scripts' included, were delivered at termination.
    node = f"dbfs:/idle-logs/{cid}/init_scripts/{cid}_127.0.0.1"
    logs = [f.path or "" for f in w.dbfs.list(node)]
    stdout = next(p for p in logs if p.endswith(".stdout.log"))
    with w.dbfs.download(stdout) as f:
        assert f"init for {cid}".encode() in f.read()
    assert {Path(f.path or "").name for f in w.dbfs.list(f"dbfs:/idle-logs/{cid}/driver")} >= {
        "stdout",
        "stderr",
    }
    w.clusters.permanent_delete(cid)


def test_failing_init_script_terminates_before_spark(
    w: WorkspaceClient, http: httpx.Client, compute_server: Server, tmp_path: Path
) -> None:
    path = "/Users/admin@kiln.local/init-fail.sh"
    w.workspace.upload(
        path, b'echo "about to fail" >&2\nexit 3\n', format=ImportFormat.AUTO, overwrite=True
    )
    marker = tmp_path / "never"
    after = "/Users/admin@kiln.local/init-after.sh"
    w.workspace.upload(
        after, f"touch {marker}\n".encode(), format=ImportFormat.AUTO, overwrite=True
    )
    cid = w.clusters.create(
        cluster_name=unique("broken"),
        spark_version=RUNTIME,
        node_type_id=SMALL,
        num_workers=1,
        init_scripts=[
            InitScriptInfo(workspace=WorkspaceStorageInfo(destination=path)),
            InitScriptInfo(workspace=WorkspaceStorageInfo(destination=after)),
        ],
    ).cluster_id
    details = w.clusters.wait_get_cluster_terminated(cid, timeout=WAIT)
    assert details.termination_reason is not None and details.termination_reason.code is not None
    assert details.termination_reason.code.value == "INIT_SCRIPT_FAILURE"
    assert "about to fail" in (details.state_message or "")
    finished = list(w.clusters.events(cid, event_types=[EventType.INIT_SCRIPTS_FINISHED]))
    assert finished and finished[0].details is not None
    runs = (
        (finished[0].details.init_scripts.cluster or []) if finished[0].details.init_scripts else []
    )
    assert [r.status.value if r.status else None for r in runs] == ["FAILED_EXECUTION", "SKIPPED"]
    assert "about to fail" in (runs[0].stderr or "")
    assert not marker.exists()
    # Spark never started.
    home = cluster_home(compute_server, cid)
    assert not (home / "driver-state.json").exists()
    assert not (home / "logs" / "master.out").exists()
    assert gone(compute_server, cid)
    # A TERMINATED cluster: state refusals, and the admin may give it a new owner.
    with pytest.raises(InvalidState):
        w.clusters.restart(cid)
    r = http.post("/api/2.1/clusters/start", json={"cluster_id": cid})
    assert r.status_code == 200
    wait_state(w, cid, State.TERMINATED)
    with pytest.raises(InvalidParameterValue):
        w.clusters.change_owner(cid, "nobody@example.com")
    w.clusters.change_owner(cid, "admin@kiln.local")
    w.clusters.permanent_delete(cid)


def test_missing_init_script_fails_to_fetch(w: WorkspaceClient) -> None:
    cid = w.clusters.create(
        cluster_name=unique("missing"),
        spark_version=RUNTIME,
        node_type_id=SMALL,
        num_workers=0,
        init_scripts=[InitScriptInfo(dbfs=DbfsStorageInfo(destination="dbfs:/no/such.sh"))],
    ).cluster_id
    details = w.clusters.wait_get_cluster_terminated(cid, timeout=WAIT)
    assert details.termination_reason is not None and details.termination_reason.code is not None
    assert details.termination_reason.code.value == "INIT_SCRIPT_FAILURE"
    finished = list(w.clusters.events(cid, event_types=[EventType.INIT_SCRIPTS_FINISHED]))
    runs = (
        finished[0].details.init_scripts.cluster
        if finished[0].details and finished[0].details.init_scripts
        else []
    )
    assert runs and runs[0].status is not None and runs[0].status.value == "FAILED_FETCH"
    # A TERMINATED cluster keeps an update for its next start, and stays TERMINATED.
    w.clusters.update(
        cid,
        "cluster_name,spark_conf,init_scripts",
        cluster=UpdateClusterResource(
            cluster_name="fixed", spark_conf={"spark.sql.shuffle.partitions": "1"}
        ),
    )
    details = w.clusters.get(cid)
    assert details.state == State.TERMINATED
    assert details.cluster_name == "fixed" and not details.init_scripts
    assert details.spark_conf == {"spark.sql.shuffle.partitions": "1"}
    w.clusters.permanent_delete(cid)


# --- bad input ------------------------------------------------------------------------------

GOOD = {"spark_version": RUNTIME, "node_type_id": SMALL, "num_workers": 0}


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"node_type_id": "i3.xlarge"}, "node_type_id"),
        ({"driver_node_type_id": "Standard_DS3_v2"}, "driver_node_type_id"),
        ({"num_workers": -1}, "num_workers"),
        ({"num_workers": 1000}, "num_workers"),
        ({"num_workers": "lots"}, "num_workers"),
        ({"autoscale": {"min_workers": 1, "max_workers": 2}}, "num_workers"),
        ({"autotermination_minutes": 9}, "autotermination_minutes"),
        ({"autotermination_minutes": 10001}, "autotermination_minutes"),
        ({"spark_conf": "spark.x=1"}, "spark_conf"),
        ({"spark_conf": {"spark.x": {"y": 1}}}, "spark_conf"),
        ({"spark_conf": {"spark.authenticate": "false"}}, "spark_conf"),
        ({"spark_conf": {"spark.driver.bindAddress": "0.0.0.0"}}, "spark_conf"),
        ({"spark_env_vars": {"SPARK_LOCAL_IP": "0.0.0.0"}}, "spark_env_vars"),
        (
            {"init_scripts": [{"file": {"destination": "file:/etc/rc.local"}}]},
            "init_scripts[0].file",
        ),
        (
            {"init_scripts": [{"dbfs": {"destination": "dbfs:/a/../../etc/passwd"}}]},
            "init_scripts[0]",
        ),
        ({"init_scripts": [{"s3": {"destination": "s3://bucket/init.sh"}}]}, "init_scripts[0].s3"),
        ({"cluster_log_conf": {"s3": {"destination": "s3://bucket/logs"}}}, "cluster_log_conf.s3"),
        ({"spark_version": "3.5.0"}, "spark_version"),
        ({"spark_version": None}, "spark_version"),
        ({"instance_pool_id": "0101-pool"}, "instance_pool_id"),
        ({"custom_tags": {"Vendor": "me"}}, "custom_tags"),
        ({"data_security_mode": "ANYTHING_GOES"}, "data_security_mode"),
    ],
)
def test_bad_specs_are_refused_and_nothing_starts(
    http: httpx.Client, compute_server: Server, fields: dict[str, Any], named: str
) -> None:
    before = len(http.get("/api/2.0/clusters/list").json().get("clusters", []))
    body = {**GOOD, "cluster_name": unique("bad"), **fields}
    body = {k: v for k, v in body.items() if v is not None}
    for version in ("2.0", "2.1"):
        r = http.post(f"/api/{version}/clusters/create", json=body)
        error = assert_error(r, 400, "INVALID_PARAMETER_VALUE")
        assert named in error["message"], error
    assert len(http.get("/api/2.0/clusters/list").json().get("clusters", [])) == before


def test_unknown_clusters_and_refused_calls(http: httpx.Client, w: WorkspaceClient) -> None:
    missing = "0101-000000-nothere1"
    with pytest.raises(ResourceDoesNotExist):
        w.clusters.get(missing)
    for action in ("start", "restart", "delete", "permanent-delete", "events", "pin"):
        r = http.post(f"/api/2.1/clusters/{action}", json={"cluster_id": missing})
        assert_error(r, 400, "INVALID_PARAMETER_VALUE")
    assert_error(http.post("/api/2.1/clusters/start", json={}), 400, "INVALID_PARAMETER_VALUE")
    assert_error(http.get("/api/2.1/clusters/get"), 400, "INVALID_PARAMETER_VALUE")
    r = http.post("/api/2.1/clusters/resize", json={"cluster_id": missing, "num_workers": 1})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")
    r = http.post("/api/2.1/clusters/edit", json={"cluster_id": missing, **GOOD})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")


def test_non_admins_cannot_change_owners(
    http: httpx.Client, make_compute_user: Callable[[], ComputeUser]
) -> None:
    other = make_compute_user().http
    r = other.post(
        "/api/2.1/clusters/change-owner",
        json={"cluster_id": "0101-000000-nothere1", "owner_username": "x@example.com"},
    )
    assert_error(r, 403, "PERMISSION_DENIED")


# --- the control plane crashes and comes back ------------------------------------------------


@pytest.mark.slow
def test_crash_adopts_live_clusters_and_reconciles_dead_ones(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    data = tmp_path_factory.mktemp("crash") / "data"
    homes = data.resolve() / "clusters"
    srv = start_server(data, env=ENV)
    try:
        w = WorkspaceClient(host=srv.url, token=srv.token, auth_type="pat")
        survivor = w.clusters.create(
            cluster_name="survivor", spark_version=RUNTIME, node_type_id=SMALL, num_workers=1
        ).cluster_id
        casualty = w.clusters.create(
            cluster_name="casualty", spark_version=RUNTIME, node_type_id=SMALL, num_workers=0
        ).cluster_id
        wait_state(w, survivor, State.RUNNING)
        wait_state(w, casualty, State.RUNNING)
        survivors = {p.pid for p in tagged(cluster_home(srv, survivor))}
        # The control plane dies hard; one cluster's processes die with it, one's do not.
        srv.process.send_signal(signal.SIGKILL)
        srv.process.wait(timeout=30)
        kill_tagged(cluster_home(srv, casualty))
        assert {p.pid for p in tagged(cluster_home(srv, survivor))} == survivors
        srv = start_server(data, env=ENV)
        w = WorkspaceClient(host=srv.url, token=srv.token, auth_type="pat")
        adopted = w.clusters.get(survivor)
        assert adopted.state == State.RUNNING
        healthy = list(w.clusters.events(survivor, event_types=[EventType.DRIVER_HEALTHY]))
        assert healthy[0].details is not None
        assert "Adopted" in (healthy[0].details.driver_state_message or "")
        assert smoke_job(srv, survivor, tasks=2) == 2
        assert {p.pid for p in tagged(cluster_home(srv, survivor))} >= survivors
        lost = wait_state(w, casualty, State.TERMINATED)
        assert lost.termination_reason is not None and lost.termination_reason.code is not None
        assert lost.termination_reason.code.value == "DRIVER_UNRESPONSIVE"
        assert "gone" in (lost.state_message or "")
        # A clean stop leaves no Spark process behind, and says why in the store.
        assert stop_server_process(srv.process) == 0
        assert tagged(homes) == []
        with sqlite3.connect(data / "kiln.db") as db:
            state, message = db.execute(
                "SELECT state, state_message FROM clusters WHERE cluster_id = ?", (survivor,)
            ).fetchone()
        assert state == "TERMINATED" and "server stopped" in message
    finally:
        stop_server_process(srv.process)
        kill_tagged(homes)
