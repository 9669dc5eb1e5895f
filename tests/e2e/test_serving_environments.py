"""Each served model in its own environment: a model whose requirements Kiln's interpreter
lacks is served from a venv built for it (Kiln's own environment stays as it was); a model whose
requirements cannot be installed fails its update with uv's error while the previous config
keeps serving."""

from __future__ import annotations

import importlib.util
import time
from typing import Any

import httpx
import pytest
from test_mlflow import run_client

from support import Server, assert_error

MODEL = "main.default.serving_envs"
EP = "/api/2.0/serving-endpoints"
EXTRA = "pyjokes==0.8.3"

# v1 needs a package Kiln's environment lacks (its predict imports it); v2 cannot be installed.
REGISTER_SCRIPT = r"""
import json, os
import mlflow
import pandas as pd
from mlflow.models import infer_signature

class UsesPyjokes(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        import pyjokes
        from importlib.metadata import version
        return [f"{version('pyjokes')}:{len(pyjokes.get_jokes())>0}:{x}" for x in model_input["x"]]

mlflow.set_tracking_uri("databricks")
mlflow.set_experiment(f"/Users/{os.environ['KILN_USER']}/serving-envs")
name = os.environ["KILN_MODEL"]
versions = []
for extra in (os.environ["KILN_EXTRA"], "kiln-no-such-package-7b==9.9.9"):
    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(
            name="model", python_model=UsesPyjokes(), extra_pip_requirements=[extra],
            signature=infer_signature(pd.DataFrame({"x": [1]}), ["a"]),
        )
    versions.append(mlflow.register_model(info.model_uri, name).version)
print("RESULT " + json.dumps({"versions": versions}))
"""


def _wait(admin: httpx.Client, name: str, timeout: float = 400) -> tuple[dict[str, Any], set[str]]:
    """The endpoint once its config update ends, and the pending state messages seen meanwhile."""
    seen: set[str] = set()
    deadline = time.monotonic() + timeout
    while True:
        body: dict[str, Any] = admin.get(f"{EP}/{name}").json()
        for entity in body.get("pending_config", {}).get("served_entities", []):
            if entity["state"]["deployment"] == "DEPLOYMENT_CREATING":
                seen.add(entity["state"].get("deployment_state_message", ""))
        if body["state"]["config_update"] != "IN_PROGRESS":
            return body, seen
        assert time.monotonic() < deadline, body
        time.sleep(0.3)


def _entity(version: str) -> dict[str, Any]:
    return {"entity_name": MODEL, "entity_version": version, "workload_size": "Small"}


@pytest.mark.slow
def test_model_served_from_its_own_environment(server: Server, admin: httpx.Client) -> None:
    assert importlib.util.find_spec("pyjokes") is None, "Kiln's environment must lack pyjokes"
    versions = run_client(
        server,
        server.token,
        "admin@kiln.local",
        REGISTER_SCRIPT,
        KILN_MODEL=MODEL,
        KILN_EXTRA=EXTRA,
    )["versions"]
    name = "env-venv"
    created = admin.post(
        EP, json={"name": name, "config": {"served_entities": [_entity(versions[0])]}}
    )
    assert created.status_code == 200, created.text
    pending = created.json()["pending_config"]["served_entities"][0]["state"]
    assert pending["deployment"] == "DEPLOYMENT_CREATING"
    body, seen = _wait(admin, name)
    assert body["state"] == {"ready": "READY", "config_update": "NOT_UPDATING"}, body
    # While it was pending, the entity said what it was doing (and nothing else).
    assert seen <= {
        "",
        "Checking the model's requirements.",
        f"Building the model's environment: {EXTRA}.",
        "Loading the model.",
    }, seen
    state = body["config"]["served_entities"][0]["state"]
    assert state == {
        "deployment": "DEPLOYMENT_READY",
        "deployment_state_message": f"Runs in its own environment with {EXTRA}.",
    }
    answer = admin.post(
        f"/serving-endpoints/{name}/invocations", json={"dataframe_records": [{"x": 7}, {"x": 8}]}
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"predictions": ["0.8.3:True:7", "0.8.3:True:8"]}
    # The venv is the model's: Kiln's own interpreter still lacks the package.
    assert importlib.util.find_spec("pyjokes") is None
    envs = [p for p in (server.data_dir / "serving" / "envs").iterdir() if p.is_dir()]
    assert len(envs) == 1 and (envs[0] / ".kiln-ready").read_text() == EXTRA

    # A version whose requirement cannot be installed: the update fails with uv's error, and
    # the first version keeps serving.
    update = admin.put(f"{EP}/{name}/config", json={"served_entities": [_entity(versions[1])]})
    assert update.status_code == 200, update.text
    body, _ = _wait(admin, name)
    assert body["state"]["config_update"] == "UPDATE_FAILED", body
    failed = body["pending_config"]["served_entities"][0]["state"]
    assert failed["deployment"] == "DEPLOYMENT_FAILED"
    assert "Installing the model's requirements failed" in failed["deployment_state_message"]
    assert "kiln-no-such-package-7b" in failed["deployment_state_message"]
    assert body["config"]["served_entities"][0]["entity_version"] == versions[0]
    again = admin.post(
        f"/serving-endpoints/{name}/invocations",
        json={"dataframe_split": {"columns": ["x"], "data": [[1]]}},
    )
    assert again.status_code == 200 and again.json() == {"predictions": ["0.8.3:True:1"]}
    # Only the one environment that built is cached.
    assert len([p for p in (server.data_dir / "serving" / "envs").iterdir()]) == 1
    assert_error(admin.get(f"{EP}/no-such-endpoint"), 404, "RESOURCE_DOES_NOT_EXIST")
    assert admin.delete(f"{EP}/{name}").status_code == 200
