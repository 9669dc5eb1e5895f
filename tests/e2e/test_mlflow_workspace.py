"""Experiments as workspace objects, and a notebook's default experiment.

Driven by databricks-sdk (`w.experiments`, `w.workspace`) and raw HTTP where the SDK hides a
field (its `ObjectType` enum has no MLFLOW_EXPERIMENT, so it parses the type as None).
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import NotFound, ResourceAlreadyExists

from support import Server, assert_error

HOME = "/Users/admin@kiln.local"
CREATE = "/api/2.0/mlflow/experiments/create"

# The ML area loads once, before any client call can time out on it.
pytestmark = pytest.mark.usefixtures("mlflow_area")


def _status(admin: httpx.Client, path: str) -> dict[str, Any]:
    r = admin.get("/api/2.0/workspace/get-status", params={"path": path})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _stage(sdk: WorkspaceClient, experiment_id: str) -> str | None:
    experiment = sdk.experiments.get_experiment(experiment_id).experiment
    assert experiment is not None
    return experiment.lifecycle_stage


def _gone(admin: httpx.Client, path: str) -> None:
    r = admin.get("/api/2.0/workspace/get-status", params={"path": path})
    assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST")


def test_an_experiment_is_a_workspace_object(admin: httpx.Client, sdk: WorkspaceClient) -> None:
    sdk.workspace.mkdirs(f"{HOME}/exps")
    path = f"{HOME}/exps/first"
    exp_id = sdk.experiments.create_experiment(path).experiment_id
    assert exp_id
    status = _status(admin, path)
    assert status["object_type"] == "MLFLOW_EXPERIMENT"
    assert status["path"] == path and isinstance(status["object_id"], int)
    listed = {o.path: o for o in sdk.workspace.list(f"{HOME}/exps")}
    assert listed[path].object_id == status["object_id"]
    r = admin.get("/api/2.0/workspace/list", params={"path": f"{HOME}/exps"})
    assert [o["object_type"] for o in r.json()["objects"]] == ["MLFLOW_EXPERIMENT"]
    experiment = sdk.experiments.get_experiment(exp_id).experiment
    assert experiment is not None and experiment.tags is not None
    assert {t.key: t.value for t in experiment.tags}["mlflow.experimentType"] == (
        "MLFLOW_EXPERIMENT"
    )

    # Renaming moves the object; the old path is free again.
    sdk.experiments.update_experiment(exp_id, new_name=f"{HOME}/exps/renamed")
    _gone(admin, path)
    assert _status(admin, f"{HOME}/exps/renamed")["object_id"] == status["object_id"]

    # Deleting the experiment removes the object; restoring puts it back.
    sdk.experiments.delete_experiment(exp_id)
    _gone(admin, f"{HOME}/exps/renamed")
    assert _stage(sdk, exp_id) == "deleted"
    sdk.experiments.restore_experiment(exp_id)
    assert _status(admin, f"{HOME}/exps/renamed")["object_type"] == "MLFLOW_EXPERIMENT"
    assert _stage(sdk, exp_id) == "active"

    # Deleting the object deletes the experiment; so does deleting a folder above it.
    sdk.workspace.delete(f"{HOME}/exps/renamed")
    assert _stage(sdk, exp_id) == "deleted"
    inner = sdk.experiments.create_experiment(f"{HOME}/exps/inner").experiment_id
    with pytest.raises(Exception, match="not empty"):
        sdk.workspace.delete(f"{HOME}/exps")
    assert _stage(sdk, inner) == "active"
    sdk.workspace.delete(f"{HOME}/exps", recursive=True)
    assert _stage(sdk, inner) == "deleted"


def test_experiment_paths_need_a_folder_and_a_free_name(
    admin: httpx.Client, sdk: WorkspaceClient
) -> None:
    sdk.workspace.mkdirs(f"{HOME}/clash/folder")
    r = admin.post(CREATE, json={"name": f"{HOME}/no-such-folder/exp"})
    assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST")
    assert f"{HOME}/no-such-folder" in r.json()["message"]
    assert_error(
        admin.post(CREATE, json={"name": f"{HOME}/clash/folder"}), 409, "RESOURCE_ALREADY_EXISTS"
    )
    content = base64.b64encode(b"x").decode()
    r = admin.post(
        "/api/2.0/workspace/import",
        json={"path": f"{HOME}/clash/file.txt", "format": "AUTO", "content": content},
    )
    assert r.status_code == 200, r.text
    r = admin.post(CREATE, json={"name": f"{HOME}/clash/file.txt"})
    assert_error(r, 409, "RESOURCE_ALREADY_EXISTS")
    r = admin.post(CREATE, json={"name": f"{HOME}/clash/exp", "artifact_location": 3})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")
    exp_id = sdk.experiments.create_experiment(f"{HOME}/clash/exp").experiment_id
    with pytest.raises(ResourceAlreadyExists):
        sdk.experiments.create_experiment(f"{HOME}/clash/exp")
    # An import cannot overwrite an experiment, and an experiment does not export.
    r = admin.post(
        "/api/2.0/workspace/import",
        json={
            "path": f"{HOME}/clash/exp",
            "format": "SOURCE",
            "language": "PYTHON",
            "content": content,
            "overwrite": True,
        },
    )
    assert_error(r, 409, "RESOURCE_ALREADY_EXISTS")
    r = admin.get("/api/2.0/workspace/export", params={"path": f"{HOME}/clash/exp"})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")

    update = "/api/2.0/mlflow/experiments/update"
    for new_name, status, code in (
        (f"{HOME}/clash/folder", 409, "RESOURCE_ALREADY_EXISTS"),
        (f"{HOME}/clash/file.txt", 409, "RESOURCE_ALREADY_EXISTS"),
        (f"{HOME}/missing/exp", 404, "RESOURCE_DOES_NOT_EXIST"),
        ("relative", 400, "INVALID_PARAMETER_VALUE"),
    ):
        r = admin.post(update, json={"experiment_id": exp_id, "new_name": new_name})
        assert_error(r, status, code)
    assert _status(admin, f"{HOME}/clash/exp")["object_type"] == "MLFLOW_EXPERIMENT"
    for route in ("update", "delete", "restore"):
        url = f"/api/2.0/mlflow/experiments/{route}"
        assert_error(admin.post(url, json={}), 400, "INVALID_PARAMETER_VALUE")
        r = admin.post(url, json={"experiment_id": "987654", "new_name": f"{HOME}/x"})
        assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST")

    # A deleted experiment's path can be taken; restoring it then is refused.
    sdk.experiments.delete_experiment(exp_id)
    sdk.workspace.mkdirs(f"{HOME}/clash/exp")
    r = admin.post("/api/2.0/mlflow/experiments/restore", json={"experiment_id": exp_id})
    assert_error(r, 409, "RESOURCE_ALREADY_EXISTS")
    assert _stage(sdk, exp_id) == "deleted"
    with pytest.raises(NotFound):
        sdk.experiments.delete_experiment("987654")


def test_other_users_experiments_are_not_theirs(
    server: Server, sdk: WorkspaceClient, make_user: Callable[..., tuple[str, str]]
) -> None:
    exp_id = sdk.experiments.create_experiment(f"{HOME}/private-exp").experiment_id
    _name, token = make_user("exp-owner")
    with server.client(token) as client:
        for route in ("delete", "update"):
            r = client.post(
                f"/api/2.0/mlflow/experiments/{route}",
                json={"experiment_id": exp_id, "new_name": f"{HOME}/moved"},
            )
            assert_error(r, 403, "PERMISSION_DENIED")
    assert _stage(sdk, exp_id) == "active"


NOTEBOOK_SCRIPT = r"""
import json, os
import mlflow

# What a notebook context holds: tracking URI `databricks` and the notebook's experiment name
# (kiln.driver.dbutils.mlflow_env); the notebook itself never calls set_experiment.
with mlflow.start_run() as run:
    mlflow.log_metric("m", 1.0)
exp = mlflow.get_experiment(run.info.experiment_id)
print("RESULT " + json.dumps({"name": exp.name, "id": exp.experiment_id, "tags": exp.tags}))
"""


def test_a_notebook_run_logs_to_its_notebook_experiment(
    server: Server, admin: httpx.Client, sdk: WorkspaceClient
) -> None:
    path = f"{HOME}/nb-with-runs"
    source = base64.b64encode(b"# Databricks notebook source\nprint(1)\n").decode()
    r = admin.post(
        "/api/2.0/workspace/import",
        json={"path": path, "format": "SOURCE", "language": "PYTHON", "content": source},
    )
    assert r.status_code == 200, r.text
    proc = subprocess.run(
        [sys.executable, "-c", NOTEBOOK_SCRIPT],
        env={
            **os.environ,
            "DATABRICKS_HOST": server.url,
            "DATABRICKS_TOKEN": server.token,
            "MLFLOW_TRACKING_URI": "databricks",
            "MLFLOW_EXPERIMENT_NAME": path,
        },
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stdout + proc.stderr
    result = json.loads(lines[-1][len("RESULT ") :])
    assert result["name"] == path
    assert result["tags"]["mlflow.experimentType"] == "NOTEBOOK"
    # The notebook stays the object at its path; the experiment is the notebook's.
    assert _status(admin, path)["object_type"] == "NOTEBOOK"
    # A notebook's experiment is renamed with its notebook, never on its own.
    r = admin.post(
        "/api/2.0/mlflow/experiments/update",
        json={"experiment_id": result["id"], "new_name": f"{HOME}/elsewhere"},
    )
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")
    # Deleting the experiment leaves the notebook; restoring brings the experiment back.
    sdk.experiments.delete_experiment(result["id"])
    assert _status(admin, path)["object_type"] == "NOTEBOOK"
    sdk.experiments.restore_experiment(result["id"])
    # Deleting the notebook deletes its experiment, which cannot come back without it.
    sdk.workspace.delete(path)
    assert _stage(sdk, result["id"]) == "deleted"
    r = admin.post("/api/2.0/mlflow/experiments/restore", json={"experiment_id": result["id"]})
    assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST")
