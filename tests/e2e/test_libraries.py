"""Libraries API end to end: databricks-sdk against a real `kiln up` and a real single-node
Spark cluster whose executors import what was installed into the cluster's environment."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import subprocess
import time
import zipfile
from collections.abc import Callable, Iterator
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
    running_compute_server,
    skip_without,
    tagged,
    unique,
    wait_for,
    wait_state,
)
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import InvalidParameterValue
from databricks.sdk.service.compute import (
    ClusterDetails,
    Library,
    LibraryFullStatus,
    LibraryInstallStatus,
    MavenLibrary,
    PythonPyPiLibrary,
    State,
)
from databricks.sdk.service.workspace import ImportFormat

from kiln.compute.driver_client import read_secrets
from support import Server, assert_error

pytestmark = pytest.mark.slow

ENV = compute_env()
WHEEL_NAME = "kilnwheel-0.1-py3-none-any.whl"
S = LibraryInstallStatus
ALL_CLUSTERS = "/api/2.0/kiln/libraries/all-clusters"


def tiny_wheel() -> bytes:
    """A pure-Python wheel written by hand: module `kilnwheel` with VALUE = 42."""
    files = {
        "kilnwheel/__init__.py": b"VALUE = 42\n",
        "kilnwheel-0.1.dist-info/METADATA": b"Metadata-Version: 2.1\nName: kilnwheel\n"
        b"Version: 0.1\n",
        "kilnwheel-0.1.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: kiln-test\n"
        b"Root-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for name, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    record.append("kilnwheel-0.1.dist-info/RECORD,,")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
        zf.writestr("kilnwheel-0.1.dist-info/RECORD", "\n".join(record) + "\n")
    return buffer.getvalue()


def statuses(w: WorkspaceClient, cluster_id: str) -> dict[str, LibraryFullStatus]:
    """The cluster's libraries by a short name."""
    out = {}
    for st in w.libraries.cluster_status(cluster_id):
        lib = st.library
        assert lib is not None
        name = (
            (lib.pypi.package if lib.pypi else None)
            or (lib.maven.coordinates if lib.maven else None)
            or lib.whl
            or lib.requirements
            or lib.jar
        )
        out[str(name)] = st
    return out


def settled(w: WorkspaceClient, cluster_id: str, names: set[str]) -> dict[str, LibraryFullStatus]:
    """Wait until every named library left PENDING/RESOLVING/INSTALLING."""
    busy = {S.PENDING, S.RESOLVING, S.INSTALLING}

    def check() -> dict[str, LibraryFullStatus] | None:
        found = statuses(w, cluster_id)
        if names <= set(found) and all(found[n].status not in busy for n in names):
            return found
        return None

    result: dict[str, LibraryFullStatus] = wait_for(check, f"libraries {names} to settle")
    return result


def imported_on_executors(server: Server, cluster_id: str, modules: list[str]) -> list[Any]:
    """Run a Spark job whose Python tasks import `modules`; [(module, file, python)]."""
    home = cluster_home(server, cluster_id)
    state = json.loads((home / "driver-state.json").read_text())
    secret = read_secrets(home / "secrets.json")["control"]
    response = httpx.post(
        f"http://127.0.0.1:{state['control_port']}/smoke-job",
        json={"tasks": 2, "imports": modules},
        headers={"Authorization": f"Bearer {secret}"},
        timeout=300,
    )
    assert response.status_code == 200, response.text
    result: list[Any] = response.json()["imported"]
    return result


# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compute_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_compute_server(tmp_path_factory.mktemp("libraries") / "data", ENV) as srv:
        yield srv


@pytest.fixture(scope="module")
def cluster(w: WorkspaceClient) -> ClusterDetails:
    return w.clusters.create_and_wait(
        cluster_name=f"libs-{os.getpid()}",
        spark_version=RUNTIME,
        node_type_id=SMALL,
        num_workers=0,
        spark_conf={"spark.master": "local[1]", "spark.databricks.cluster.profile": "singleNode"},
        custom_tags={"ResourceClass": "SingleNode"},
        timeout=WAIT,
    )


# --- tests ----------------------------------------------------------------------------------


def test_libraries_lifecycle(
    w: WorkspaceClient, compute_server: Server, cluster: ClusterDetails
) -> None:
    cid = cluster.cluster_id
    assert cid is not None
    env_dir = str(compute_server.data_dir.resolve() / "clusters" / cid / "env")
    whl_path = f"dbfs:/FileStore/libs/{WHEEL_NAME}"
    w.dbfs.upload(whl_path, io.BytesIO(tiny_wheel()), overwrite=True)
    folder = "/Users/admin@kiln.local/libs"
    w.workspace.mkdirs(folder)
    w.workspace.upload(f"{folder}/requirements.txt", io.BytesIO(b"six\n"), format=ImportFormat.AUTO)
    maven = "com.example.kiln:nothing:1.0.0"
    w.libraries.install(
        cid,
        [
            Library(pypi=PythonPyPiLibrary(package="humanize")),
            Library(whl=whl_path),
            Library(requirements=f"/Workspace{folder}/requirements.txt"),
            Library(maven=MavenLibrary(coordinates=maven)),
        ],
    )
    names = {"humanize", whl_path, f"/Workspace{folder}/requirements.txt", maven}
    found = settled(w, cid, names)
    for name in names - {maven}:
        assert found[name].status == S.INSTALLED, (name, found[name])
        assert found[name].is_library_for_all_clusters is False
    # Maven cannot be reached from here: FAILED with the reason, nothing hangs.
    assert found[maven].status == S.FAILED
    assert found[maven].messages and "cannot be reached" in found[maven].messages[0]
    # The executors' Python tasks import what was installed, from the cluster's environment.
    imported = {
        m: (f, py)
        for m, f, py in imported_on_executors(compute_server, cid, ["humanize", "kilnwheel", "six"])
    }
    assert set(imported) == {"humanize", "kilnwheel", "six"}
    for module, (file, python) in imported.items():
        assert file.startswith(env_dir), (module, file)
        assert python.startswith(env_dir)
    # all-cluster-statuses lists the cluster with the same libraries.
    everything = {s.cluster_id: s for s in w.libraries.all_cluster_statuses()}
    assert {
        str(st.library.pypi.package if st.library and st.library.pypi else "")
        for st in everything[cid].library_statuses or []
    } >= {"humanize"}

    # A failing pip install: FAILED with pip's error in the messages.
    w.libraries.install(cid, [Library(pypi=PythonPyPiLibrary(package="kiln-no-such-package-xyz"))])
    bad = settled(w, cid, {"kiln-no-such-package-xyz"})["kiln-no-such-package-xyz"]
    assert bad.status == S.FAILED
    assert bad.messages and "kiln-no-such-package-xyz" in bad.messages[0]

    # Uninstall: marked, still importable until the restart, gone after it; the rest is
    # installed again into a fresh environment.
    w.libraries.uninstall(
        cid,
        [
            Library(pypi=PythonPyPiLibrary(package="humanize")),
            Library(pypi=PythonPyPiLibrary(package="kiln-no-such-package-xyz")),
        ],
    )
    marked = statuses(w, cid)
    assert marked["humanize"].status == S.UNINSTALL_ON_RESTART
    w.clusters.restart_and_wait(cid, timeout=WAIT)
    after = settled(w, cid, {whl_path, f"/Workspace{folder}/requirements.txt"})
    assert "humanize" not in after and "kiln-no-such-package-xyz" not in after
    assert after[whl_path].status == S.INSTALLED
    again = {m for m, _, _ in imported_on_executors(compute_server, cid, ["kilnwheel"])}
    assert again == {"kilnwheel"}
    humanize_left = list(Path(env_dir).glob("lib/python3*/site-packages/humanize"))
    assert humanize_left == []


def test_install_on_terminated_cluster_waits(w: WorkspaceClient) -> None:
    details = w.clusters.create(
        cluster_name=f"libs-idle-{os.getpid()}",
        spark_version=RUNTIME,
        node_type_id=SMALL,
        num_workers=0,
        spark_conf={"spark.master": "local[1]", "spark.databricks.cluster.profile": "singleNode"},
        custom_tags={"ResourceClass": "SingleNode"},
    ).response
    cid = details.cluster_id
    assert cid is not None
    w.clusters.delete_and_wait(cid, timeout=WAIT)
    pkg = Library(pypi=PythonPyPiLibrary(package="humanize"))
    w.libraries.install(cid, [pkg])
    # Nothing runs: the library waits for the next start.
    time.sleep(1)
    assert statuses(w, cid)["humanize"].status == S.PENDING
    # Uninstalling a library that was never installed removes it at once.
    w.libraries.uninstall(cid, [pkg])
    assert statuses(w, cid) == {}
    w.clusters.permanent_delete(cid)


def test_bad_inputs(compute_server: Server, cluster: ClusterDetails) -> None:
    cid = cluster.cluster_id
    pypi = {"pypi": {"package": "humanize"}}
    with compute_server.client() as http:
        assert_error(
            http.post(
                "/api/2.0/libraries/install", json={"cluster_id": "0000-x", "libraries": [pypi]}
            ),
            404,
            "RESOURCE_DOES_NOT_EXIST",
        )
        assert_error(
            http.get("/api/2.0/libraries/cluster-status", params={"cluster_id": "0000-x"}),
            404,
            "RESOURCE_DOES_NOT_EXIST",
        )
        cases: list[tuple[Any, str]] = [
            ([], "libraries"),
            ([{}], "libraries[0]"),
            ([{"pypi": {"package": "a"}, "jar": "dbfs:/a.jar"}], "libraries[0]"),
            ([{"maven": {"coordinates": "no-version"}}], "libraries[0].maven.coordinates"),
            ([{"egg": "dbfs:/a.egg"}], "libraries[0].egg"),
            ([{"cran": {"package": "ggplot2"}}], "libraries[0].cran"),
            ([{"whl": "s3://bucket/a.whl"}], "libraries[0].whl"),
            ([{"whl": "dbfs:/FileStore/../../etc/a.whl"}], "libraries[0].whl"),
            ([{"requirements": "/Workspace/../etc/passwd"}], "libraries[0].requirements"),
        ]
        for libraries, field in cases:
            for verb in ("install", "uninstall"):
                response = http.post(
                    f"/api/2.0/libraries/{verb}", json={"cluster_id": cid, "libraries": libraries}
                )
                assert_error(response, 400, "INVALID_PARAMETER_VALUE")
                assert field in response.json()["message"], (libraries, response.text)
        assert_error(
            http.post("/api/2.0/libraries/install", json={"libraries": [pypi]}),
            400,
            "INVALID_PARAMETER_VALUE",
        )


def test_only_managers_install(
    make_compute_user: Callable[[], ComputeUser], cluster: ClusterDetails
) -> None:
    other = make_compute_user().http
    body = {"cluster_id": cluster.cluster_id, "libraries": [{"pypi": {"package": "humanize"}}]}
    assert_error(other.post("/api/2.0/libraries/install", json=body), 403, "PERMISSION_DENIED")
    assert_error(other.post("/api/2.0/libraries/uninstall", json=body), 403, "PERMISSION_DENIED")
    # Reading statuses needs no management right.
    status = other.get(
        "/api/2.0/libraries/cluster-status", params={"cluster_id": cluster.cluster_id}
    )
    assert status.status_code == 200
    assert status.json()["cluster_id"] == cluster.cluster_id


# --- libraries for all clusters, jars on the driver's and executors' classpath ---------------

HELLO = """\
package kiln.test;

public class Hello {
    public static String greet(String who) {
        return "hello " + who + " from " + ProcessHandle.current().pid();
    }
}
"""
# A Spark plugin: its driver half runs in the driver JVM, its executor half in every executor
# JVM, and each calls Hello (from the other jar) and leaves a file saying where it ran.
PROBE = """\
package kiln.test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collections;
import java.util.Map;
import org.apache.spark.SparkContext;
import org.apache.spark.api.plugin.DriverPlugin;
import org.apache.spark.api.plugin.ExecutorPlugin;
import org.apache.spark.api.plugin.PluginContext;
import org.apache.spark.api.plugin.SparkPlugin;

public class Probe implements SparkPlugin {
    static void mark(PluginContext ctx, String who) {
        try {
            Path dir = Path.of(ctx.conf().get("spark.kiln.probe.dir"));
            Files.writeString(dir.resolve(who), Hello.greet(who));
        } catch (java.io.IOException e) {
            throw new RuntimeException(e);
        }
    }

    public DriverPlugin driverPlugin() {
        return new DriverPlugin() {
            public Map<String, String> init(SparkContext sc, PluginContext ctx) {
                mark(ctx, "driver");
                return Collections.emptyMap();
            }
        };
    }

    public ExecutorPlugin executorPlugin() {
        return new ExecutorPlugin() {
            public void init(PluginContext ctx, Map<String, String> extra) {
                mark(ctx, "executor-" + ctx.executorID());
            }
        };
    }
}
"""


def build_jars(folder: Path) -> tuple[bytes, bytes]:
    """Compile Hello and Probe with the machine's javac; (hello.jar, probe.jar)."""
    skip_without("javac")
    skip_without("jar")
    import pyspark

    spark_jars = Path(pyspark.__file__).parent / "jars"
    src = folder / "src" / "kiln" / "test"
    src.mkdir(parents=True)
    (src / "Hello.java").write_text(HELLO)
    (src / "Probe.java").write_text(PROBE)
    classes = folder / "classes"
    sources = [str(src / "Hello.java"), str(src / "Probe.java")]
    subprocess.run(
        ["javac", "--release", "17", "-d", str(classes), "-cp", f"{spark_jars}/*", *sources],
        check=True,
        timeout=300,
    )
    out = []
    for name, pattern in (("hello.jar", "Hello*.class"), ("probe.jar", "Probe*.class")):
        entries = [str(p.relative_to(classes)) for p in (classes / "kiln" / "test").glob(pattern)]
        subprocess.run(
            ["jar", "cf", str(folder / name), *entries], cwd=classes, check=True, timeout=120
        )
        out.append((folder / name).read_bytes())
    return out[0], out[1]


def _roles(server: Server, cluster_id: str) -> dict[str, set[int]]:
    found: dict[str, set[int]] = {"driver": set(), "executor": set()}
    for proc in tagged(cluster_home(server, cluster_id)):
        try:
            line = " ".join(proc.cmdline())
        except psutil.Error:
            continue
        if "CoarseGrainedExecutorBackend" in line:
            found["executor"].add(proc.pid)
        elif "org.apache.spark.deploy.SparkSubmit" in line:
            found["driver"].add(proc.pid)
    return found


def test_libraries_for_all_clusters_and_jars_on_every_jvm(
    w: WorkspaceClient,
    http: httpx.Client,
    compute_server: Server,
    make_compute_user: Callable[[], ComputeUser],
    cluster: ClusterDetails,
    tmp_path: Path,
) -> None:
    hello, probe = build_jars(tmp_path / "jars")
    probe_path = "dbfs:/FileStore/jars/kiln-probe.jar"
    w.dbfs.upload(probe_path, io.BytesIO(probe), overwrite=True)
    folder = "/Users/admin@kiln.local/jars"
    w.workspace.mkdirs(folder)
    hello_path = f"/Workspace{folder}/kiln-hello.jar"
    w.workspace.upload(
        f"{folder}/kiln-hello.jar", io.BytesIO(hello), format=ImportFormat.AUTO, overwrite=True
    )
    whl_path = f"dbfs:/FileStore/all/{WHEEL_NAME}"
    w.dbfs.upload(whl_path, io.BytesIO(tiny_wheel()), overwrite=True)
    everywhere = [{"jar": probe_path}, {"jar": hello_path}, {"whl": whl_path}]

    # Only admins set libraries for all clusters; bad libraries are refused as on a cluster.
    user = make_compute_user()
    denied = user.http.post(f"{ALL_CLUSTERS}/install", json={"libraries": everywhere})
    assert_error(denied, 403, "PERMISSION_DENIED")
    for libraries, field in (
        ([], "libraries"),
        ([{"egg": "dbfs:/a.egg"}], "libraries[0].egg"),
        ([{"jar": "s3://bucket/a.jar"}], "libraries[0].jar"),
    ):
        r = http.post(f"{ALL_CLUSTERS}/install", json={"libraries": libraries})
        assert field in assert_error(r, 400, "INVALID_PARAMETER_VALUE")["message"]
    r = http.post(f"{ALL_CLUSTERS}/install", json={"libraries": everywhere})
    assert r.status_code == 200, r.text
    listed = user.http.get(ALL_CLUSTERS).json()["libraries"]
    assert [entry["library"] for entry in listed] == everywhere
    assert all(entry["is_library_for_all_clusters"] for entry in listed)

    try:
        # A running cluster gets them at its next start; until then they show as PENDING.
        waiting = {
            st.library.jar or st.library.whl: st
            for st in w.libraries.cluster_status(cluster.cluster_id or "")
            if st.library and st.is_library_for_all_clusters
        }
        assert set(waiting) == {probe_path, hello_path, whl_path}
        assert {st.status for st in waiting.values()} == {S.PENDING}

        probes = tmp_path / "probes"
        probes.mkdir()
        cid = w.clusters.create(
            cluster_name=unique("everywhere"),
            spark_version=RUNTIME,
            node_type_id=SMALL,
            num_workers=1,
            spark_conf={"spark.plugins": "kiln.test.Probe", "spark.kiln.probe.dir": str(probes)},
        ).cluster_id
        details = wait_state(w, cid, State.RUNNING, State.TERMINATED)
        assert details.state == State.RUNNING, details.termination_reason
        found = settled(w, cid, {probe_path, hello_path, whl_path})
        for name in (probe_path, hello_path, whl_path):
            assert found[name].status == S.INSTALLED, found[name]
            assert found[name].is_library_for_all_clusters is True
        # Both jars were on the classpath of the driver JVM and of the worker's executor JVM:
        # the plugin loaded there and called Hello from the other jar.
        roles = _roles(compute_server, cid)
        assert len(roles["executor"]) == 1 and len(roles["driver"]) == 1, roles
        marks = {p.name: p.read_text() for p in probes.iterdir()}
        assert marks["driver"] == f"hello driver from {roles['driver'].pop()}"
        assert marks["executor-0"] == f"hello executor-0 from {roles['executor'].pop()}"
        # The wheel for all clusters is importable by the executors' Python.
        assert [m for m, _, _ in imported_on_executors(compute_server, cid, ["kilnwheel"])] == [
            "kilnwheel"
        ]
        # A library for all clusters is not removed cluster by cluster.
        with pytest.raises(InvalidParameterValue, match="all clusters"):
            w.libraries.uninstall(cid, [Library(whl=whl_path)])
        everything = {s.cluster_id: s for s in w.libraries.all_cluster_statuses()}
        assert {
            st.library.jar
            for st in everything[cid].library_statuses or []
            if st.library and st.library.jar
        } == {probe_path, hello_path}
    finally:
        r = http.post(f"{ALL_CLUSTERS}/uninstall", json={"libraries": everywhere})
        assert r.status_code == 200, r.text
    # Removed for all clusters: a cluster that has them drops them at its next restart, one
    # that never started with them no longer lists them.
    assert http.get(ALL_CLUSTERS).json()["libraries"] == []
    after = statuses(w, cid)
    assert {after[n].status for n in (probe_path, hello_path, whl_path)} == {S.UNINSTALL_ON_RESTART}
    assert not [
        st
        for st in w.libraries.cluster_status(cluster.cluster_id or "")
        if st.is_library_for_all_clusters
    ]
    w.clusters.permanent_delete(cid)
