"""MLflow inside Kiln, driven by the unchanged `mlflow` client with tracking URI `databricks`.

The client runs in a subprocess (with DATABRICKS_HOST/DATABRICKS_TOKEN in its environment), as a
user's script would, so MLflow's process-wide state never leaks into the test process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from support import Server, assert_error

CLIENT_SCRIPT = r"""
import json, os, tempfile
import mlflow
import numpy as np
from mlflow import MlflowClient
from mlflow.entities import Metric, Param
from sklearn.linear_model import LogisticRegression

mlflow.set_tracking_uri("databricks")
exp = mlflow.set_experiment(f"/Users/{os.environ['KILN_USER']}/my-exp")
X = np.array([[0.0], [1.0], [2.0], [3.0]])
y = np.array([0, 0, 1, 1])
client = MlflowClient()
with mlflow.start_run() as run:
    mlflow.log_param("alpha", 0.5)
    mlflow.log_metric("loss", 0.25, step=1)
    client.log_batch(
        run.info.run_id,
        metrics=[Metric("m", float(i), 0, i) for i in range(10)],
        params=[Param("p", "1")],
    )
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "notes.txt")
        with open(p, "w") as f:
            f.write("hello artifacts")
        mlflow.log_artifact(p, artifact_path="docs")
    model = LogisticRegression().fit(X, y)
    info = mlflow.sklearn.log_model(model, name="model", input_example=X[:1])
name = os.environ["KILN_MODEL"]
mv = mlflow.register_model(info.model_uri, name)
client.set_registered_model_alias(name, "champion", mv.version)
loaded = mlflow.pyfunc.load_model(f"models:/{name}@champion")
# The workspace registry (registry URI `databricks`): stages, through MLflow's own handlers.
ws = MlflowClient(registry_uri="databricks")
mlflow.set_registry_uri("databricks")
ws_mv = mlflow.register_model(info.model_uri, "ws_model")
ws.transition_model_version_stage("ws_model", ws_mv.version, "Production")
ws_loaded = mlflow.pyfunc.load_model("models:/ws_model/Production")
r = client.get_run(run.info.run_id)
d = client.download_artifacts(run.info.run_id, "docs/notes.txt")
history = client.get_metric_history(run.info.run_id, "m")
out = {
    "experiment_id": exp.experiment_id,
    "experiment_name": exp.name,
    "run_id": run.info.run_id,
    "version": mv.version,
    "pred": [int(v) for v in loaded.predict(X)],
    "params": r.data.params,
    "metrics": r.data.metrics,
    "history": len(history),
    "user": r.info.user_id,
    "artifacts": sorted(a.path for a in client.list_artifacts(run.info.run_id)),
    "docs": [a.path for a in client.list_artifacts(run.info.run_id, "docs")],
    "notes": open(d).read(),
    "alias_version": client.get_model_version_by_alias(name, "champion").version,
    "ws_stage": ws.get_model_version("ws_model", ws_mv.version).current_stage,
    "ws_pred": [int(v) for v in ws_loaded.predict(X)],
}
print("RESULT " + json.dumps(out))
"""

MODEL = "main.default.iris_e2e"

# The ML area loads once, before any client call can time out on it.
pytestmark = pytest.mark.usefixtures("mlflow_area")


def run_client(server: Server, token: str, user: str, script: str, **env: str) -> dict[str, Any]:
    """Run `script` with the mlflow client pointed at `server`; return its RESULT line."""
    proc = subprocess.run(
        [sys.executable, "-c", script],
        env={
            **os.environ,
            "DATABRICKS_HOST": server.url,
            "DATABRICKS_TOKEN": token,
            "KILN_USER": user,
            "MLFLOW_TRACKING_URI": "databricks",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=400,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stdout + proc.stderr
    result: dict[str, Any] = json.loads(lines[-1][len("RESULT ") :])
    return result


@pytest.fixture(scope="module")
def logged(server: Server) -> dict[str, Any]:
    """The acceptance script's results (one run of the real client for the module)."""
    return run_client(server, server.token, "admin@kiln.local", CLIENT_SCRIPT, KILN_MODEL=MODEL)


@pytest.mark.slow
def test_mlflow_client_tracks_registers_and_loads(logged: dict[str, Any]) -> None:
    assert logged["experiment_name"] == "/Users/admin@kiln.local/my-exp"
    assert logged["params"] == {"alpha": "0.5", "p": "1"}
    assert logged["metrics"] == {"loss": 0.25, "m": 9.0}
    assert logged["history"] == 10
    assert logged["user"] == "admin@kiln.local"
    assert logged["artifacts"] == ["docs"]
    assert logged["docs"] == ["docs/notes.txt"]
    assert logged["notes"] == "hello artifacts"
    assert logged["version"] == "1"
    assert logged["alias_version"] == "1"
    assert logged["pred"] == [0, 0, 1, 1]
    assert logged["ws_stage"] == "Production"
    assert logged["ws_pred"] == [0, 0, 1, 1]


def _run_dir(server: Server, logged: dict[str, Any]) -> Path:
    return (
        server.data_dir
        / "dbfs/WorkspaceInternal/Mlflow/Artifacts"
        / logged["experiment_id"]
        / "Runs"
        / logged["run_id"]
        / "artifacts"
    )


def test_artifacts_and_model_files_live_in_dbfs(server: Server, logged: dict[str, Any]) -> None:
    assert (_run_dir(server, logged) / "docs/notes.txt").read_text() == "hello artifacts"
    version_dir = server.data_dir / "dbfs/Models/main/default/iris_e2e/1"
    assert (version_dir / "MLmodel").is_file()
    assert (server.data_dir / "mlflow.db").is_file()


BAD_PATHS = [
    "../x",
    "docs/../../other",
    "%2e%2e/x",
    "%252e%252e/x",
    "docs//notes.txt",
    "docs/notes.txt#frag",
    "docs/notes.txt%23frag",
    "docs\\notes.txt",
    "docs%5cnotes.txt",
    "/etc/passwd",
    "docs/notes.txt?x=1",
]


@pytest.mark.parametrize("bad", BAD_PATHS)
def test_artifact_paths_cannot_escape_the_run_root(
    admin: httpx.Client, logged: dict[str, Any], bad: str
) -> None:
    run_id = logged["run_id"]
    for url in ("/ajax-api/2.0/mlflow/get-artifact", "/api/2.0/mlflow/artifacts/list"):
        r = admin.get(url, params={"run_id": run_id, "path": bad})
        assert_error(r, 400, "INVALID_PARAMETER_VALUE")
    r = admin.post(
        "/api/2.0/mlflow/artifacts/credentials-for-write", json={"run_id": run_id, "path": [bad]}
    )
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")


def test_files_api_refuses_traversal_from_an_artifact_root(
    admin: httpx.Client, logged: dict[str, Any]
) -> None:
    base = (
        f"/api/2.0/fs/files/WorkspaceInternal/Mlflow/Artifacts/{logged['experiment_id']}"
        f"/Runs/{logged['run_id']}/artifacts"
    )
    assert_error(admin.get(base + "/%2e%2e/%2e%2e/x"), 400, "INVALID_PARAMETER_VALUE")
    assert admin.get(base + "/docs/notes.txt").content == b"hello artifacts"


def test_symlinks_out_of_the_run_root_are_refused(
    server: Server, admin: httpx.Client, logged: dict[str, Any]
) -> None:
    run_dir = _run_dir(server, logged)
    outside = server.data_dir / "outside-secret.txt"
    outside.write_text("secret")
    (run_dir / "leak.txt").symlink_to(outside)
    (run_dir / "leakdir").symlink_to(server.data_dir)
    try:
        run_id = logged["run_id"]
        for path in ("leak.txt", "leakdir/admin-token"):
            r = admin.get(
                "/ajax-api/2.0/mlflow/get-artifact", params={"run_id": run_id, "path": path}
            )
            assert_error(r, 400, "INVALID_PARAMETER_VALUE")
        listed = admin.get("/api/2.0/mlflow/artifacts/list", params={"run_id": run_id}).json()
        assert [f["path"] for f in listed["files"]] == ["docs"]
        r = admin.get(
            "/api/2.0/mlflow/artifacts/list", params={"run_id": run_id, "path": "leakdir"}
        )
        assert_error(r, 400, "INVALID_PARAMETER_VALUE")
    finally:
        (run_dir / "leak.txt").unlink()
        (run_dir / "leakdir").unlink()


def test_signed_urls_write_and_read_the_run_artifacts(
    admin: httpx.Client, logged: dict[str, Any]
) -> None:
    run_id = logged["run_id"]
    r = admin.post(
        "/api/2.0/mlflow/artifacts/credentials-for-write",
        json={"run_id": run_id, "path": ["signed/a.txt"]},
    )
    assert r.status_code == 200, r.text
    (info,) = r.json()["credential_infos"]
    assert info["type"] == "AWS_PRESIGNED_URL" and info["path"] == "signed/a.txt"
    headers = {h["name"]: h["value"] for h in info["headers"]}
    put = httpx.put(info["signed_uri"], content=b"via signed url", headers=headers)
    assert put.status_code in (200, 204), put.text
    r = admin.get(
        "/ajax-api/2.0/mlflow/get-artifact", params={"run_id": run_id, "path": "signed/a.txt"}
    )
    assert r.content == b"via signed url"
    r = admin.get(
        "/api/2.0/mlflow/artifacts/credentials-for-read",
        params={"run_id": run_id, "path": "signed/a.txt"},
    )
    (info,) = r.json()["credential_infos"]
    got = httpx.get(info["signed_uri"], headers={h["name"]: h["value"] for h in info["headers"]})
    assert got.content == b"via signed url"


def test_workspace_registry_artifact_paths(admin: httpx.Client, logged: dict[str, Any]) -> None:
    url = "/api/2.0/mlflow/model-versions/list-artifacts"
    r = admin.get(url, params={"name": "ws_model", "version": "1"})
    assert r.status_code == 200, r.text
    assert "MLmodel" in [f["path"] for f in r.json()["files"]]
    signed = "/api/2.0/mlflow/model-versions/get-signed-download-uri"
    r = admin.get(signed, params={"name": "ws_model", "version": "1", "path": "MLmodel"})
    info = r.json()
    headers = {h["name"]: h["value"] for h in info["headers"]}
    assert b"flavors" in httpx.get(info["signed_uri"], headers=headers).content
    for bad in ("../x", "%2e%2e/x", "a//b", "a#b", "a\\b"):
        r = admin.get(signed, params={"name": "ws_model", "version": "1", "path": bad})
        assert_error(r, 400, "INVALID_PARAMETER_VALUE")
        r = admin.get(url, params={"name": "ws_model", "version": "1", "path": bad})
        assert_error(r, 400, "INVALID_PARAMETER_VALUE")
    r = admin.get(url, params={"name": "nope_model", "version": "1"})
    assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST")
    assert_error(admin.get(url, params={"name": "ws_model"}), 400, "INVALID_PARAMETER_VALUE")


def test_unknown_runs_and_routes(admin: httpx.Client) -> None:
    assert_error(
        admin.get("/api/2.0/mlflow/runs/get", params={"run_id": "nope"}),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )
    assert_error(
        admin.get("/api/2.0/mlflow/artifacts/list", params={"run_id": "0123abcd"}),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )
    assert_error(admin.get("/api/2.0/mlflow/artifacts/list"), 400, "INVALID_PARAMETER_VALUE")
    assert_error(admin.get("/api/2.0/mlflow/no-such-api"), 404, "ENDPOINT_NOT_FOUND")


def test_runs_belong_to_the_token_user(
    server: Server, make_user: Callable[..., tuple[str, str]]
) -> None:
    name, token = make_user("mlflow")
    with server.client(token) as client:
        r = client.post("/api/2.0/mlflow/experiments/create", json={"name": f"/Users/{name}/owned"})
        assert r.status_code == 200, r.text
        exp_id = r.json()["experiment_id"]
        r = client.post(
            "/api/2.0/mlflow/runs/create",
            json={
                "experiment_id": exp_id,
                "user_id": "someone-else@example.com",
                "tags": [{"key": "mlflow.user", "value": "someone-else@example.com"}],
            },
        )
        assert r.status_code == 200, r.text
        run = r.json()["run"]
        assert run["info"]["user_id"] == name
        tags = {t["key"]: t["value"] for t in run["data"]["tags"]}
        assert tags["mlflow.user"] == name


def test_experiment_names_are_workspace_paths(
    server: Server, make_user: Callable[..., tuple[str, str]]
) -> None:
    name, token = make_user("exp")
    with server.client(token) as client:
        url = "/api/2.0/mlflow/experiments/create"
        assert client.post(url, json={"name": f"/Shared/exp-{name}"}).status_code == 200
        r = client.post(url, json={"name": f"/Users/{name}/mine"})
        assert r.status_code == 200, r.text
        exp_id = r.json()["experiment_id"]
        assert_error(client.post(url, json={"name": "relative"}), 400, "INVALID_PARAMETER_VALUE")
        assert_error(client.post(url, json={}), 400, "INVALID_PARAMETER_VALUE")
        bad = f"/Users/{name}/../admin@kiln.local/x"
        assert_error(client.post(url, json={"name": bad}), 400, "INVALID_PARAMETER_VALUE")
        r = client.post(url, json={"name": "/Users/admin@kiln.local/not-yours"})
        assert_error(r, 403, "PERMISSION_DENIED")
        r = client.post(
            "/api/2.0/mlflow/experiments/update",
            json={"experiment_id": exp_id, "new_name": "/Users/admin@kiln.local/stolen"},
        )
        assert_error(r, 403, "PERMISSION_DENIED")
        r = client.post(
            "/api/2.0/mlflow/experiments/update",
            json={"experiment_id": exp_id, "new_name": f"/Users/{name}/renamed"},
        )
        assert r.status_code == 200, r.text


def test_no_token_no_mlflow(server: Server) -> None:
    r = httpx.get(f"{server.url}/api/2.0/mlflow/experiments/search")
    assert_error(r, 401, "UNAUTHENTICATED")


UC = "/api/2.0/mlflow/unity-catalog"


def test_unity_catalog_registry_api(admin: httpx.Client, logged: dict[str, Any]) -> None:
    r = admin.get(UC + "/registered-models/get", params={"name": MODEL})
    assert r.status_code == 200, r.text
    model = r.json()["registered_model"]
    assert model["name"] == MODEL
    assert model["aliases"] == [{"alias": "champion", "version": "1"}]
    r = admin.get(UC + "/model-versions/get", params={"name": MODEL, "version": "1"})
    version = r.json()["model_version"]
    assert version["storage_location"] == "dbfs:/Models/main/default/iris_e2e/1"
    assert version["status"] == "READY" and version["run_id"] == logged["run_id"]
    r = admin.get(UC + "/model-versions/search", params={"filter": f"name='{MODEL}'"})
    assert [v["version"] for v in r.json()["model_versions"]] == ["1"]
    r = admin.get(UC + "/registered-models/search", params={"max_results": 10})
    assert MODEL in [m["name"] for m in r.json()["registered_models"]]
    r = admin.post(UC + "/registered-models/create", json={"name": "main.default.tmp_model"})
    assert r.status_code == 200, r.text
    r = admin.request(
        "DELETE", UC + "/registered-models/delete", json={"name": "main.default.tmp_model"}
    )
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    ("method", "op", "payload", "status", "code"),
    [
        (
            "POST",
            "registered-models/create",
            {"name": "just_a_name"},
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        ("POST", "registered-models/create", {"name": "a.b.c.d"}, 400, "INVALID_PARAMETER_VALUE"),
        ("POST", "registered-models/create", {"name": "a/b.c.d"}, 400, "INVALID_PARAMETER_VALUE"),
        (
            "POST",
            "registered-models/create",
            {"name": "nocatalog.default.m"},
            404,
            "RESOURCE_DOES_NOT_EXIST",
        ),
        (
            "POST",
            "registered-models/create",
            {"name": "main.noschema.m"},
            404,
            "RESOURCE_DOES_NOT_EXIST",
        ),
        ("POST", "registered-models/create", {"name": MODEL}, 409, "RESOURCE_ALREADY_EXISTS"),
        (
            "GET",
            "registered-models/get",
            {"name": "main.default.nope"},
            404,
            "RESOURCE_DOES_NOT_EXIST",
        ),
        (
            "GET",
            "model-versions/get",
            {"name": MODEL, "version": "99"},
            404,
            "RESOURCE_DOES_NOT_EXIST",
        ),
        (
            "GET",
            "model-versions/get",
            {"name": MODEL, "version": "x"},
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            "GET",
            "registered-models/alias",
            {"name": MODEL, "alias": "nope"},
            404,
            "RESOURCE_DOES_NOT_EXIST",
        ),
        (
            "POST",
            "registered-models/alias",
            {"name": MODEL, "alias": "latest", "version": "1"},
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            "POST",
            "registered-models/alias",
            {"name": MODEL, "alias": "ok", "version": "7"},
            404,
            "RESOURCE_DOES_NOT_EXIST",
        ),
        ("POST", "model-versions/create", {"name": MODEL}, 400, "INVALID_PARAMETER_VALUE"),
        ("GET", "registered-models/search", {"max_results": "0"}, 400, "INVALID_PARAMETER_VALUE"),
        ("POST", "no-such-op", {}, 404, "RESOURCE_DOES_NOT_EXIST"),
    ],
)
def test_unity_catalog_registry_bad_input(
    admin: httpx.Client,
    logged: dict[str, Any],
    method: str,
    op: str,
    payload: dict[str, Any],
    status: int,
    code: str,
) -> None:
    if method == "GET":
        r = admin.get(f"{UC}/{op}", params=payload)
    else:
        r = admin.request(method, f"{UC}/{op}", json=payload)
    assert_error(r, status, code)


def test_unity_catalog_registry_malformed_body(admin: httpx.Client) -> None:
    r = admin.post(
        UC + "/registered-models/create",
        content=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert_error(r, 400, "MALFORMED_REQUEST")
    r = admin.post(UC + "/registered-models/create", json=["a.b.c"])
    assert_error(r, 400, "MALFORMED_REQUEST")


def test_mlflow_ui_under_mlflow(
    server: Server, admin: httpx.Client, logged: dict[str, Any]
) -> None:
    r = admin.get("/mlflow", follow_redirects=False)
    assert r.status_code == 307 and r.headers["location"] == "/mlflow/"
    page = admin.get("/mlflow/")
    assert page.status_code == 200 and "<title>MLflow</title>" in page.text
    script = page.text.split('src="', 1)[1].split('"', 1)[0]
    asset = admin.get(f"/mlflow/{script}")
    assert asset.status_code == 200 and len(asset.content) > 100_000
    r = admin.get("/mlflow/ajax-api/2.0/mlflow/experiments/search", params={"max_results": 100})
    assert r.status_code == 200, r.text
    names = [e["name"] for e in r.json()["experiments"]]
    assert "/Users/admin@kiln.local/my-exp" in names
    r = admin.get(
        "/mlflow/get-artifact", params={"run_uuid": logged["run_id"], "path": "docs/notes.txt"}
    )
    assert r.content == b"hello artifacts"
    run_page = f"/mlflow/experiments/{logged['experiment_id']}/runs/{logged['run_id']}"
    r = admin.get(run_page, follow_redirects=False)
    assert (
        r.status_code == 307 and r.headers["location"] == "/mlflow/#" + run_page[len("/mlflow") :]
    )
    assert admin.get("/mlflow/static-files/../../admin-token").status_code == 404
    assert_error(httpx.get(f"{server.url}/mlflow/"), 401, "UNAUTHENTICATED")


@pytest.mark.slow
@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="no /usr/bin/chromium")
def test_mlflow_ui_renders_experiments_in_a_browser(server: Server, logged: dict[str, Any]) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        try:
            context = browser.new_context(
                extra_http_headers={"Authorization": f"Bearer {server.token}"}
            )
            page = context.new_page()
            page.goto(f"{server.url}/mlflow/#/experiments/{logged['experiment_id']}")
            page.get_by_text("my-exp").first.wait_for(timeout=90_000)
        finally:
            browser.close()
