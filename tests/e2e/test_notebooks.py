"""Notebook runs on a real cluster: a notebook with %run of a helper, widgets, %sql, %md, %sh,
display of a DataFrame and of a matplotlib figure, a secret that works and prints as
[REDACTED], %pip, and `dbutils.notebook.run` of children (a value through exit, a failure, a
timeout); its record exported as JUPYTER and HTML; clear errors for a missing notebook and a
%run cycle; databricks-sdk's remote dbutils through the cluster.

One server and one single-node cluster for the whole module (a Spark start is ~20 s here).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from compute_support import (
    RUNTIME,
    SINGLE_NODE_CONF,
    SINGLE_NODE_TAGS,
    SMALL,
    WAIT,
    compute_env,
    make_user,
    unique,
)
from compute_support import running_compute_server as running_server
from databricks.sdk import WorkspaceClient
from databricks.sdk.service.compute import ClusterDetails, Language

from support import Server, assert_error

RUNS = "/api/2.0/kiln/notebook-runs"
TABLE = "application/vnd.kiln.table+json"
SECRET = "n0tebook-s3cret-value"
DIGEST = hashlib.sha256(SECRET.encode()).hexdigest()


@pytest.fixture(scope="module")
def compute_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("notebooks") / "data", compute_env()) as srv:
        yield srv


@pytest.fixture(scope="module")
def cluster(w: WorkspaceClient) -> ClusterDetails:
    return w.clusters.create_and_wait(
        cluster_name=unique("notebooks"),
        spark_version=RUNTIME,
        node_type_id=SMALL,
        num_workers=0,
        spark_conf=SINGLE_NODE_CONF,
        custom_tags=SINGLE_NODE_TAGS,
        timeout=WAIT,
    )


@pytest.fixture(scope="module")
def folder(http: httpx.Client) -> str:
    path = f"/Shared/{unique('nb')}"
    r = http.post("/api/2.0/workspace/mkdirs", json={"path": path})
    assert r.status_code == 200, r.text
    return path


@pytest.fixture(scope="module")
def scope(http: httpx.Client) -> str:
    name = unique("nb-scope")
    assert http.post("/api/2.0/secrets/scopes/create", json={"scope": name}).status_code == 200
    r = http.post("/api/2.0/secrets/put", json={"scope": name, "key": "pw", "string_value": SECRET})
    assert r.status_code == 200, r.text
    return name


def put_notebook(http: httpx.Client, path: str, *cells: str) -> None:
    """Import a Python notebook in SOURCE format (cells separated as Databricks does)."""
    lines = []
    for cell in cells:
        if cell.startswith("%"):
            cell = "\n".join(f"# MAGIC {line}".rstrip() for line in cell.split("\n"))
        lines.append(cell)
    text = "# Databricks notebook source\n" + "\n\n# COMMAND ----------\n\n".join(lines) + "\n"
    parent = path.rsplit("/", 1)[0]
    assert http.post("/api/2.0/workspace/mkdirs", json={"path": parent}).status_code == 200
    r = http.post(
        "/api/2.0/workspace/import",
        json={
            "path": path,
            "format": "SOURCE",
            "language": "PYTHON",
            "content": base64.b64encode(text.encode()).decode(),
            "overwrite": True,
        },
    )
    assert r.status_code == 200, r.text


def put_ipynb(http: httpx.Client, path: str, *cells: str) -> None:
    """Import a Jupyter notebook (as Jupyter writes it) with these code cells."""
    document = {
        "cells": [
            {
                "cell_type": "code",
                "execution_count": None,
                "metadata": {},
                "outputs": [],
                "source": cell.splitlines(keepends=True),
            }
            for cell in cells
        ],
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    r = http.post(
        "/api/2.0/workspace/import",
        json={
            "path": path,
            "format": "JUPYTER",
            "content": base64.b64encode(json.dumps(document).encode()).decode(),
            "overwrite": True,
        },
    )
    assert r.status_code == 200, r.text


def submit(http: httpx.Client, cluster_id: str, path: str, **extra: Any) -> str:
    r = http.post(f"{RUNS}/submit", json={"cluster_id": cluster_id, "notebook_path": path, **extra})
    assert r.status_code == 200, r.text
    return str(r.json()["run_id"])


def wait_run(http: httpx.Client, run_id: str, timeout: float = 600) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = http.get(f"{RUNS}/get", params={"run_id": run_id, "wait_seconds": 10})
        assert r.status_code == 200, r.text
        if r.json()["state"] not in ("PENDING", "RUNNING"):
            return dict(r.json())
    raise AssertionError(f"run {run_id} did not end")


def export(http: httpx.Client, run_id: str, fmt: str) -> bytes:
    r = http.get(f"{RUNS}/export", params={"run_id": run_id, "format": fmt})
    assert r.status_code == 200, r.text
    return base64.b64decode(r.json()["content"])


def outputs_text(cell: dict[str, Any]) -> str:
    parts = []
    for output in cell["outputs"]:
        if output["output_type"] == "stream":
            parts.append("".join(output["text"]))
        elif output["output_type"] in ("display_data", "execute_result"):
            for mime in ("text/plain", "text/markdown"):
                if mime in output["data"]:
                    parts.append("".join(output["data"][mime]))
        elif output["output_type"] == "error":
            parts.append(f"{output['ename']}: {output['evalue']}")
    return "\n".join(parts)


def mimes(cell: dict[str, Any]) -> set[str]:
    return {m for o in cell["outputs"] for m in o.get("data", {})}


def test_a_notebook_with_magics_widgets_secrets_and_a_child(
    http: httpx.Client, cluster: ClusterDetails, folder: str, scope: str
) -> None:
    put_notebook(
        http,
        f"{folder}/lib/helper",
        "%md\n## Helper",
        "def shout(text):\n    return text.upper() + '!'",
    )
    # The child is a Jupyter notebook (imported as JUPYTER), the others SOURCE.
    put_ipynb(
        http,
        f"{folder}/child",
        'dbutils.widgets.text("x", "1")\n'
        'dbutils.notebook.exit(str(int(dbutils.widgets.get("x")) * 2))',
    )
    scratch = f"/tmp/{unique('nb-dbfs')}"
    put_notebook(
        http,
        f"{folder}/main",
        "%md\n# Report\nSome *markdown*.",
        "%run ./lib/helper",
        'dbutils.widgets.text("greeting", "hello")\n'
        'dbutils.widgets.dropdown("rows", "3", ["3", "5"])\n'
        'print(shout(dbutils.widgets.get("greeting")), dbutils.widgets.get("rows"))',
        "%sql\nSELECT id, id * 2 AS twice FROM range(${rows})",
        '%sh\necho "shell says $((6 * 7))"',
        'display(spark.range(4).selectExpr("id", "id * id AS square"))',
        "import matplotlib.pyplot as plt\n"
        "fig, ax = plt.subplots()\n"
        "ax.plot([1, 2, 3], [1, 4, 9])\n"
        "display(fig)",
        f'secret = dbutils.secrets.get("{scope}", "pw")\n'
        'print("secret:", secret)\n'
        # The check compares digests: the value itself must appear nowhere in the notebook.
        "import hashlib\n"
        f'print("works:", hashlib.sha256(secret.encode()).hexdigest() == "{DIGEST}", len(secret))',
        'import pandas as pd\ndisplay(pd.DataFrame({"who": ["me"], "pw": [secret]}))',
        f'import os\nos.makedirs("/dbfs{scratch}")\n'
        f'with open("/dbfs{scratch}/note.txt", "w") as f:\n    f.write("written via /dbfs")',
        f"%fs head {scratch}/note.txt",
        'child = dbutils.notebook.run("./child", 300, {"x": "21"})\nprint("child said", child)',
        'dbutils.jobs.taskValues.set("answer", int(child))\ndbutils.notebook.exit(f"done:{child}")',
        'print("never runs")',
    )
    run_id = submit(http, cluster.cluster_id, f"{folder}/main", base_parameters={"rows": "5"})
    run = wait_run(http, run_id)
    notebook = json.loads(export(http, run_id, "JUPYTER"))
    cells = notebook["cells"]
    assert run["state"] == "SUCCESS", (run, [outputs_text(c) for c in cells if "outputs" in c])
    assert run["result"] == "done:42"
    assert run["task_values"] == {"answer": 42}
    assert cells[0]["cell_type"] == "markdown"
    assert "## Helper" in outputs_text(cells[1])
    assert "HELLO! 5" in outputs_text(cells[2])
    sql_tables = [o["data"][TABLE] for o in cells[3]["outputs"] if TABLE in o.get("data", {})]
    assert len(sql_tables[0]["data"]) == 5  # ${rows} = 5
    assert "shell says 42" in outputs_text(cells[4])
    frame = [o["data"][TABLE] for o in cells[5]["outputs"] if TABLE in o.get("data", {})]
    assert frame[0]["data"][3] == [3, 9]
    assert "image/png" in mimes(cells[6])
    secret_text = outputs_text(cells[7])
    assert "secret: [REDACTED]" in secret_text and SECRET not in secret_text
    assert "works: True 21" in secret_text
    table = [o["data"][TABLE] for o in cells[8]["outputs"] if TABLE in o.get("data", {})]
    assert table[0]["data"] == [["me", "[REDACTED]"]]
    assert "written via /dbfs" in outputs_text(cells[10])
    assert "child said 42" in outputs_text(cells[11])
    assert "Notebook exited: done:42" in outputs_text(cells[12])
    assert cells[13]["outputs"] == []
    page = export(http, run_id, "HTML").decode()
    assert "shell says 42" in page and "data:image/png;base64," in page
    assert "<h1>Report</h1>" in page and SECRET not in page


def test_children_that_fail_or_time_out(
    http: httpx.Client, cluster: ClusterDetails, folder: str
) -> None:
    put_notebook(http, f"{folder}/failing", "x = 1", "1 / 0")
    put_notebook(http, f"{folder}/sleepy", "import time\ntime.sleep(600)")
    put_notebook(
        http,
        f"{folder}/parent",
        'try:\n    dbutils.notebook.run("./failing", 120)\nexcept Exception as e:\n'
        '    print("failed:", type(e).__name__, "ZeroDivisionError" in str(e))',
        'try:\n    dbutils.notebook.run("./sleepy", 5)\nexcept Exception as e:\n'
        '    print("slept:", type(e).__name__, "timed out" in str(e))',
        'try:\n    dbutils.notebook.run("./does-not-exist", 60)\nexcept Exception as e:\n'
        '    print("missing:", "Notebook not found" in str(e))',
    )
    run_id = submit(http, cluster.cluster_id, f"{folder}/parent")
    run = wait_run(http, run_id)
    cells = json.loads(export(http, run_id, "JUPYTER"))["cells"]
    assert run["state"] == "SUCCESS", run
    assert "failed: WorkflowException True" in outputs_text(cells[0])
    assert "slept: WorkflowException True" in outputs_text(cells[1])
    assert "missing: True" in outputs_text(cells[2])
    # The failing child's own run says why.
    r = http.post(
        f"{RUNS}/submit",
        json={"cluster_id": cluster.cluster_id, "notebook_path": f"{folder}/failing"},
    )
    failed = wait_run(http, r.json()["run_id"])
    assert failed["state"] == "FAILED"
    assert failed["error"] == "ZeroDivisionError: division by zero"
    assert "1 / 0" in failed["error_trace"]


def test_missing_notebook_and_run_cycle(
    http: httpx.Client, cluster: ClusterDetails, folder: str
) -> None:
    r = http.post(
        f"{RUNS}/submit", json={"cluster_id": cluster.cluster_id, "notebook_path": f"{folder}/nope"}
    )
    body = assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST")
    assert f"Notebook not found: {folder}/nope" in body["message"]
    put_notebook(http, f"{folder}/cycle-a", "%run ./cycle-b")
    put_notebook(http, f"{folder}/cycle-b", "x = 1", "%run ./cycle-a")
    run = wait_run(http, submit(http, cluster.cluster_id, f"{folder}/cycle-a"))
    assert run["state"] == "FAILED"
    assert run["error"] == f"%run cycle: {folder}/cycle-a -> {folder}/cycle-b -> {folder}/cycle-a"
    put_notebook(http, f"{folder}/scala", "%scala\nval x = 1")
    run = wait_run(http, submit(http, cluster.cluster_id, f"{folder}/scala"))
    assert run["state"] == "FAILED" and "Scala cells are not supported" in run["error"]


def _wheel(tmp_path: Path) -> Path:
    """A tiny pure-Python wheel (no index needed to install it)."""
    name, version = "kilnnbpkg", "0.1"
    info = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": "VALUE = 42\n",
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{info}/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: kiln-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    files[f"{info}/RECORD"] = "".join(f"{p},,\n" for p in [*files, f"{info}/RECORD"])
    path = tmp_path / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for member, text in files.items():
            archive.writestr(member, text)
    return path


def test_pip_installs_into_the_cluster_and_restarts_python(
    http: httpx.Client, w: WorkspaceClient, cluster: ClusterDetails, folder: str, tmp_path: Path
) -> None:
    wheel = _wheel(tmp_path)
    target = f"/FileStore/{unique('wheels')}/{wheel.name}"
    w.dbfs.upload(target, io.BytesIO(wheel.read_bytes()))
    put_notebook(
        http,
        f"{folder}/pip",
        "before = 1",
        f"%pip install --no-index /dbfs{target}",
        "import kilnnbpkg\nprint('value', kilnnbpkg.VALUE, 'before' in globals())",
    )
    run = wait_run(http, submit(http, cluster.cluster_id, f"{folder}/pip"))
    cells = json.loads(export(http, run["run_id"], "JUPYTER"))["cells"]
    assert run["state"] == "SUCCESS", (run, [outputs_text(c) for c in cells])
    assert "Successfully installed kilnnbpkg-0.1" in outputs_text(cells[1])
    assert "value 42 False" in outputs_text(cells[2])  # Python restarted: `before` is gone


def test_remote_dbutils_and_redaction_through_the_cluster(
    compute_server: Server, cluster: ClusterDetails, scope: str
) -> None:
    w = WorkspaceClient(
        host=compute_server.url,
        token=compute_server.token,
        auth_type="pat",
        cluster_id=cluster.cluster_id,
    )
    mounts = w.dbutils.fs.mounts()  # a 1.2 command ending in dbutils.notebook.exit(json)
    assert [m.mountPoint for m in mounts] == ["/", "/Volumes"]
    context = w.command_execution.create_and_wait(
        cluster_id=cluster.cluster_id, language=Language.PYTHON
    )
    try:
        result = w.command_execution.execute_and_wait(
            cluster_id=cluster.cluster_id,
            context_id=context.id,
            language=Language.PYTHON,
            command=f'v = dbutils.secrets.get("{scope}", "pw")\nprint(v, len(v))',
        )
        assert result.results.data == f"[REDACTED] {len(SECRET)}", result.results
    finally:
        w.command_execution.destroy(cluster_id=cluster.cluster_id, context_id=context.id)


def test_bad_requests(
    compute_server: Server, http: httpx.Client, cluster: ClusterDetails, folder: str
) -> None:
    cid = cluster.cluster_id
    notebook = f"{folder}/bad/quick"
    put_notebook(http, notebook, "x = 1")
    assert_error(http.get(f"{RUNS}/get", params={"run_id": "nope"}), 404, "RESOURCE_DOES_NOT_EXIST")
    assert_error(
        http.post(f"{RUNS}/cancel", json={"run_id": "nope"}), 404, "RESOURCE_DOES_NOT_EXIST"
    )
    assert_error(
        http.get(f"{RUNS}/export", params={"run_id": "nope", "format": "SOURCE"}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    assert_error(
        http.post(f"{RUNS}/submit", json={"notebook_path": "/x"}), 400, "INVALID_PARAMETER_VALUE"
    )
    for body in (
        {"cluster_id": cid, "notebook_path": "relative/path"},
        {"cluster_id": cid, "notebook_path": f"{folder}/bad"},  # a folder
        {"cluster_id": cid, "notebook_path": notebook, "timeout_seconds": -1},
        {"cluster_id": cid, "notebook_path": notebook, "base_parameters": {"a": 1}},
    ):
        assert_error(http.post(f"{RUNS}/submit", json=body), 400, "INVALID_PARAMETER_VALUE")
    r = http.post(
        f"{RUNS}/submit",
        json={"cluster_id": "0000-000000-nothere", "notebook_path": notebook},
    )
    assert "does not exist" in assert_error(r, 400, "INVALID_PARAMETER_VALUE")["message"]
    # Another user does not see the run.
    run_id = submit(http, cid, notebook)
    _, token = make_user(compute_server, http)
    with compute_server.client(token) as theirs:
        assert_error(
            theirs.get(f"{RUNS}/get", params={"run_id": run_id}), 404, "RESOURCE_DOES_NOT_EXIST"
        )
    r = http.get(f"{RUNS}/get", params={"run_id": run_id, "wait_seconds": -1})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")
    wait_run(http, run_id)
