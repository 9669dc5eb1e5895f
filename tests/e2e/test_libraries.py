"""Libraries API end to end: databricks-sdk against a real `kiln up` and a real single-node
Spark cluster whose executors import what was installed into the cluster's environment."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import time
import zipfile
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.service.compute import (
    ClusterDetails,
    Library,
    LibraryFullStatus,
    LibraryInstallStatus,
    MavenLibrary,
    PythonPyPiLibrary,
)
from databricks.sdk.service.workspace import ImportFormat

from kiln.compute.driver_client import read_secrets
from support import Server, assert_error, start_server, stop_server_process

pytestmark = pytest.mark.slow

RUNTIME = "16.4.x-scala2.13"
SMALL = "kiln.test.small"
WAIT = timedelta(minutes=8)
ENV = {
    "KILN_COMPUTE_NODE_TYPES": json.dumps(
        [{"node_type_id": SMALL, "num_cores": 1, "memory_mb": 1024}]
    ),
    "KILN_COMPUTE_SUPERVISOR_INTERVAL_SECONDS": "1",
    "KILN_COMPUTE_STOP_GRACE_SECONDS": "3",
}
WHEEL_NAME = "kilnwheel-0.1-py3-none-any.whl"
S = LibraryInstallStatus


def wait_for(check: Callable[[], Any], what: str, timeout: float = 300) -> Any:
    """Poll until `check()` is truthy (a deadline, not a measurement)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.5)


def tagged(prefix: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get("KILN_CLUSTER_HOME", "").startswith(str(prefix)):
                found.append(proc)
        except psutil.Error:
            continue
    return found


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
    home = server.data_dir.resolve() / "clusters" / cluster_id
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
def lib_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("libraries") / "data", env=ENV)
    homes = srv.data_dir.resolve() / "clusters"
    try:
        yield srv
    finally:
        code = stop_server_process(srv.process)
        leftovers = tagged(homes)
        for proc in leftovers:
            proc.kill()
    assert code == 0
    assert not leftovers


@pytest.fixture(scope="module")
def w(lib_server: Server) -> WorkspaceClient:
    return WorkspaceClient(host=lib_server.url, token=lib_server.token, auth_type="pat")


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
    w: WorkspaceClient, lib_server: Server, cluster: ClusterDetails
) -> None:
    cid = cluster.cluster_id
    assert cid is not None
    env_dir = str(lib_server.data_dir.resolve() / "clusters" / cid / "env")
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
        for m, f, py in imported_on_executors(lib_server, cid, ["humanize", "kilnwheel", "six"])
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
    again = {m for m, _, _ in imported_on_executors(lib_server, cid, ["kilnwheel"])}
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


def test_bad_inputs(lib_server: Server, cluster: ClusterDetails) -> None:
    cid = cluster.cluster_id
    pypi = {"pypi": {"package": "humanize"}}
    with lib_server.client() as http:
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


def test_only_managers_install(lib_server: Server, cluster: ClusterDetails) -> None:
    with lib_server.client() as admin:
        r = admin.post(
            "/api/2.0/preview/scim/v2/Users", json={"userName": f"lib{os.getpid()}@example.com"}
        )
        assert r.status_code == 201, r.text
        r = admin.post(
            "/api/2.0/token-management/on-behalf-of/tokens",
            json={"application_id": r.json()["id"], "comment": "test"},
        )
        token = r.json()["token_value"]
    body = {"cluster_id": cluster.cluster_id, "libraries": [{"pypi": {"package": "humanize"}}]}
    with lib_server.client(token) as other:
        assert_error(other.post("/api/2.0/libraries/install", json=body), 403, "PERMISSION_DENIED")
        assert_error(
            other.post("/api/2.0/libraries/uninstall", json=body), 403, "PERMISSION_DENIED"
        )
        # Reading statuses needs no management right.
        status = other.get(
            "/api/2.0/libraries/cluster-status", params={"cluster_id": cluster.cluster_id}
        )
        assert status.status_code == 200
        assert status.json()["cluster_id"] == cluster.cluster_id
