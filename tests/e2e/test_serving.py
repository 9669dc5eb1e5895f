"""Model serving: endpoints over registered models, A/B traffic, scale to zero, failed updates."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from test_mlflow import run_client

from support import Server, assert_error

MODEL = "main.default.serving_e2e"

# Two versions: v1 always predicts 0, v2 always predicts 1.
REGISTER_SCRIPT = r"""
import json, os
import mlflow
import numpy as np
from sklearn.dummy import DummyClassifier

mlflow.set_tracking_uri("databricks")
mlflow.set_experiment(f"/Users/{os.environ['KILN_USER']}/serving")
name = os.environ["KILN_MODEL"]
X = np.array([[0.0, 1.0], [1.0, 0.0]])
versions = []
for constant in (0, 1):
    model = DummyClassifier(strategy="constant", constant=constant).fit(X, [0, 1])
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(model, name="model", input_example=X[:1])
    versions.append(mlflow.register_model(info.model_uri, name).version)
print("RESULT " + json.dumps({"versions": versions}))
"""

EP = "/api/2.0/serving-endpoints"
KILN_ENV = "Runs in Kiln's environment: every requirement of the model is satisfied."


def _wait(admin: httpx.Client, name: str, until: set[str], timeout: float = 300) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body: dict[str, Any] = admin.get(f"{EP}/{name}").json()
        if body["state"]["config_update"] in until:
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.5)


def _entity(version: str, scale_to_zero: bool = False, name: str | None = None) -> dict[str, Any]:
    entity: dict[str, Any] = {
        "entity_name": MODEL,
        "entity_version": version,
        "workload_size": "Small",
        "scale_to_zero_enabled": scale_to_zero,
    }
    if name:
        entity["name"] = name
    return entity


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _scorer_pids(server: Server, endpoint: str) -> list[int]:
    with sqlite3.connect(server.data_dir / "kiln.db") as db:
        rows = db.execute(
            "SELECT p.pid FROM serving_scorer_processes p JOIN serving_endpoints e "
            "ON e.id = p.endpoint_id WHERE e.name = ?",
            (endpoint,),
        )
        return [int(pid) for (pid,) in rows]


def _payload_rows(server: Server, table: str, expected: int) -> list[dict[str, Any]]:
    """The rows of an inference table, once it holds `expected` rows (or the wait runs out)."""
    from deltalake import DeltaTable

    with sqlite3.connect(server.data_dir / "kiln.db") as db:
        (location,) = db.execute(
            "SELECT storage_location FROM uc_tables WHERE name = ?", (table,)
        ).fetchone()
    deadline = time.monotonic() + 60
    while True:
        rows: list[dict[str, Any]] = (
            DeltaTable(f"{server.data_dir}/dbfs{location}").to_pyarrow_table().to_pylist()
        )
        if len(rows) >= expected or time.monotonic() > deadline:
            return rows
        time.sleep(0.5)


@pytest.fixture(scope="module")
def versions(server: Server) -> list[str]:
    """Two registered versions of MODEL."""
    result = run_client(server, server.token, "admin@kiln.local", REGISTER_SCRIPT, KILN_MODEL=MODEL)
    return list(result["versions"])


@pytest.fixture(scope="module")
def ab_endpoint(admin: httpx.Client, sdk: Any, versions: list[str]) -> Iterator[str]:
    """An endpoint serving both versions split 80/20, created with databricks-sdk."""
    from databricks.sdk.service.serving import (
        AutoCaptureConfigInput,
        EndpointCoreConfigInput,
        Route,
        ServedEntityInput,
        TrafficConfig,
    )

    name = "ab-test"
    detailed = sdk.serving_endpoints.create_and_wait(
        name=name,
        config=EndpointCoreConfigInput(
            name=name,
            served_entities=[
                ServedEntityInput(
                    name="v1",
                    entity_name=MODEL,
                    entity_version=versions[0],
                    workload_size="Small",
                    scale_to_zero_enabled=False,
                ),
                ServedEntityInput(
                    name="v2",
                    entity_name=MODEL,
                    entity_version=versions[1],
                    workload_size="Small",
                    scale_to_zero_enabled=False,
                ),
            ],
            traffic_config=TrafficConfig(
                routes=[
                    Route(served_model_name="v1", traffic_percentage=80),
                    Route(served_model_name="v2", traffic_percentage=20),
                ]
            ),
            auto_capture_config=AutoCaptureConfigInput(
                catalog_name="main", schema_name="default", table_name_prefix="ab_test"
            ),
        ),
    )
    assert detailed.state.ready.value == "READY"
    try:
        yield name
    finally:
        admin.delete(f"{EP}/{name}")


@pytest.mark.slow
def test_ab_split_80_20(server: Server, admin: httpx.Client, ab_endpoint: str) -> None:
    answered: Counter[str] = Counter()
    predictions: dict[str, set[int]] = {"v1": set(), "v2": set()}
    for _ in range(200):
        r = admin.post(
            f"/serving-endpoints/{ab_endpoint}/invocations",
            json={"dataframe_split": {"columns": ["a", "b"], "data": [[0.5, 0.5]]}},
        )
        assert r.status_code == 200, r.text
        served = r.headers["served-model-name"]
        answered[served] += 1
        predictions[served].update(r.json()["predictions"])
    assert 150 <= answered["v1"] <= 170 and answered["v1"] + answered["v2"] == 200, answered
    assert predictions == {"v1": {0}, "v2": {1}}
    # The inference table holds one row per query (appended in batches).
    rows = _payload_rows(server, "ab_test_payload", 200)
    assert len(rows) == 200
    assert Counter(r["served_entity_name"] for r in rows) == answered
    assert {r["status_code"] for r in rows} == {200}
    assert {r["endpoint_name"] for r in rows} == {ab_endpoint}
    assert {r["model_name"] for r in rows} == {MODEL}
    assert all(r["execution_time_ms"] > 0 and r["timestamp_ms"] > 0 for r in rows)
    assert json.loads(rows[0]["request"])["dataframe_split"]["data"] == [[0.5, 0.5]]
    assert json.loads(rows[0]["response"])["predictions"] in ([0], [1])


def test_request_formats_and_sdk_query(sdk: Any, admin: httpx.Client, ab_endpoint: str) -> None:
    url = f"/serving-endpoints/{ab_endpoint}/invocations"
    payloads = [
        {"dataframe_split": {"columns": ["a", "b"], "data": [[0.5, 0.5], [1.0, 2.0]]}},
        {"dataframe_records": [{"a": 0.5, "b": 0.5}, {"a": 1.0, "b": 2.0}]},
        {"instances": [[0.5, 0.5], [1.0, 2.0]]},
        {"inputs": [[0.5, 0.5], [1.0, 2.0]]},
    ]
    for payload in payloads:
        r = admin.post(url, json=payload)
        assert r.status_code == 200, (payload, r.text)
        assert len(r.json()["predictions"]) == 2
    response = sdk.serving_endpoints.query(
        name=ab_endpoint, dataframe_records=[{"a": 0.0, "b": 1.0}]
    )
    assert response.predictions in ([0], [1])
    assert response.served_model_name in ("v1", "v2")


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"rows": [[1, 2]]}', "exactly one of"),
        (b'{"instances": [[1, 2]], "inputs": [[1, 2]]}', "exactly one of"),
        (b'{"dataframe_split": {"columns": ["a"]}}', "'data' list"),
        (b'{"dataframe_records": {"a": 1}}', "dataframe_records must be a list"),
    ],
)
def test_malformed_payloads_are_400(
    admin: httpx.Client, ab_endpoint: str, content: bytes, fragment: str
) -> None:
    r = admin.post(
        f"/serving-endpoints/{ab_endpoint}/invocations",
        content=content,
        headers={"Content-Type": "application/json"},
    )
    body = assert_error(r, 400, "BAD_REQUEST")
    assert fragment in body["message"]


def test_schema_mismatch_is_the_models_400(admin: httpx.Client, ab_endpoint: str) -> None:
    r = admin.post(
        f"/serving-endpoints/{ab_endpoint}/invocations",
        json={"dataframe_split": {"columns": ["a"], "data": [["x", "y", "z"]]}},
    )
    assert r.status_code == 400, r.text
    assert r.json()["error_code"] == "BAD_REQUEST"


def test_get_and_list(sdk: Any, ab_endpoint: str, versions: list[str]) -> None:
    detailed = sdk.serving_endpoints.get(ab_endpoint)
    assert detailed.state.config_update.value == "NOT_UPDATING"
    entities = {e.name: e for e in detailed.config.served_entities}
    assert entities["v1"].entity_version == versions[0]
    assert entities["v2"].state.deployment.value == "DEPLOYMENT_READY"
    assert entities["v2"].state.deployment_state_message == KILN_ENV
    routes = {
        r.served_model_name: r.traffic_percentage for r in detailed.config.traffic_config.routes
    }
    assert routes == {"v1": 80, "v2": 20}
    assert ab_endpoint in [e.name for e in sdk.serving_endpoints.list()]


@pytest.mark.slow
def test_scale_to_zero_starts_on_first_request(
    admin: httpx.Client, sdk: Any, versions: list[str]
) -> None:
    name = "scale-zero"
    r = admin.post(
        EP, json={"name": name, "config": {"served_entities": [_entity(versions[1], True)]}}
    )
    assert r.status_code == 200, r.text
    try:
        body = _wait(admin, name, {"NOT_UPDATING", "UPDATE_FAILED"})
        assert body["state"] == {"ready": "READY", "config_update": "NOT_UPDATING"}
        (entity,) = body["config"]["served_entities"]
        assert entity["name"] == "serving_e2e-" + versions[1]
        assert "Scaled to zero" in entity["state"]["deployment_state_message"]
        # The first request waits for the process to start: minutes on a loaded 2-core runner.
        r = admin.post(
            f"/serving-endpoints/{name}/invocations",
            json={"instances": [[0.0, 0.0]]},
            timeout=300,
        )
        assert r.status_code == 200, r.text
        assert r.json()["predictions"] == [1]
        (entity,) = admin.get(f"{EP}/{name}").json()["config"]["served_entities"]
        # Started: no longer scaled to zero; it runs in Kiln's environment (sklearn is there).
        assert entity["state"]["deployment_state_message"] == KILN_ENV
    finally:
        assert admin.delete(f"{EP}/{name}").status_code == 200


@pytest.mark.slow
def test_failed_update_keeps_the_previous_config_serving(
    server: Server, admin: httpx.Client, versions: list[str]
) -> None:
    name = "keeps-serving"
    r = admin.post(EP, json={"name": name, "config": {"served_entities": [_entity(versions[0])]}})
    assert r.status_code == 200, r.text
    try:
        assert _wait(admin, name, {"NOT_UPDATING", "UPDATE_FAILED"})["state"]["ready"] == "READY"
        # A version whose files are there but cannot load.
        broken = "/api/2.0/fs/files/Models/main/default/serving_e2e/99/MLmodel"
        assert admin.put(broken, content=b"flavors: {not: [valid").status_code == 204
        r = admin.put(f"{EP}/{name}/config", json={"served_entities": [_entity("99")]})
        assert r.status_code == 200, r.text
        assert r.json()["state"]["config_update"] == "IN_PROGRESS"
        assert r.json()["pending_config"]["config_version"] == 2
        body = _wait(admin, name, {"NOT_UPDATING", "UPDATE_FAILED"})
        assert body["state"] == {"ready": "NOT_READY", "config_update": "UPDATE_FAILED"}
        (failed,) = body["pending_config"]["served_entities"]
        assert failed["state"]["deployment"] == "DEPLOYMENT_FAILED"
        assert failed["state"]["deployment_state_message"]
        assert body["config"]["config_version"] == 1
        r = admin.post(f"/serving-endpoints/{name}/invocations", json={"instances": [[1.0, 1.0]]})
        assert r.status_code == 200, r.text
        assert r.json()["predictions"] == [0]
        # A good update afterwards brings the endpoint back to READY.
        r = admin.put(f"{EP}/{name}/config", json={"served_entities": [_entity(versions[1])]})
        assert r.status_code == 200, r.text
        body = _wait(admin, name, {"NOT_UPDATING", "UPDATE_FAILED"})
        assert body["state"] == {"ready": "READY", "config_update": "NOT_UPDATING"}
        r = admin.post(f"/serving-endpoints/{name}/invocations", json={"instances": [[1.0, 1.0]]})
        assert r.json()["predictions"] == [1]
        # Deleting the endpoint stops its process (found by its PID record).
        pids = _scorer_pids(server, name)
        assert len(pids) == 1 and _pid_alive(pids[0])
        assert admin.delete(f"{EP}/{name}").status_code == 200
        deadline = time.monotonic() + 30
        while _pid_alive(pids[0]) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _pid_alive(pids[0])
        assert_error(admin.get(f"{EP}/{name}"), 404, "RESOURCE_DOES_NOT_EXIST")
    finally:
        admin.delete(f"{EP}/{name}")


def test_capture_needs_an_existing_schema(admin: httpx.Client, versions: list[str]) -> None:
    capture = {"catalog_name": "nope", "schema_name": "default", "table_name_prefix": "x"}
    body = {
        "name": "capture-missing",
        "config": {"served_entities": [_entity(versions[0])], "auto_capture_config": capture},
    }
    assert_error(admin.post(EP, json=body), 404, "RESOURCE_DOES_NOT_EXIST")
    assert_error(admin.get(f"{EP}/capture-missing"), 404, "RESOURCE_DOES_NOT_EXIST")


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (
            {"name": "bad name!", "config": {"served_entities": [_entity("1")]}},
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        ({"name": "no-config"}, 400, "INVALID_PARAMETER_VALUE"),
        ({"name": "empty", "config": {"served_entities": []}}, 400, "INVALID_PARAMETER_VALUE"),
        (
            {
                "name": "two-level",
                "config": {"served_entities": [{"entity_name": "a.b", "entity_version": "1"}]},
            },
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            {"name": "bad-version", "config": {"served_entities": [_entity("one")]}},
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            {"name": "no-such-version", "config": {"served_entities": [_entity("404")]}},
            404,
            "RESOURCE_DOES_NOT_EXIST",
        ),
        (
            {
                "name": "bad-size",
                "config": {"served_entities": [{**_entity("1"), "workload_size": "Huge"}]},
            },
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            {
                "name": "dup",
                "config": {"served_entities": [_entity("1", name="x"), _entity("2", name="x")]},
            },
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            {
                "name": "sum",
                "config": {
                    "served_entities": [_entity("1", name="x")],
                    "traffic_config": {
                        "routes": [{"served_model_name": "x", "traffic_percentage": 90}]
                    },
                },
            },
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            {
                "name": "unknown-route",
                "config": {
                    "served_entities": [_entity("1", name="x")],
                    "traffic_config": {
                        "routes": [{"served_model_name": "y", "traffic_percentage": 100}]
                    },
                },
            },
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            {
                "name": "capture",
                "config": {
                    "served_entities": [_entity("1")],
                    "auto_capture_config": {"catalog_name": "main"},
                },
            },
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            {"name": "ab-test", "config": {"served_entities": [_entity("1")]}},
            409,
            "RESOURCE_ALREADY_EXISTS",
        ),
    ],
)
def test_create_bad_input(
    admin: httpx.Client, ab_endpoint: str, body: dict[str, Any], status: int, code: str
) -> None:
    assert_error(admin.post(EP, json=body), status, code)


def test_unknown_endpoints(admin: httpx.Client, versions: list[str]) -> None:
    assert_error(admin.get(f"{EP}/nope"), 404, "RESOURCE_DOES_NOT_EXIST")
    assert_error(admin.delete(f"{EP}/nope"), 404, "RESOURCE_DOES_NOT_EXIST")
    r = admin.put(f"{EP}/nope/config", json={"served_entities": [_entity("1")]})
    assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST")
    r = admin.post("/serving-endpoints/nope/invocations", json={"instances": [[1, 2]]})
    assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST")
    assert_error(admin.post(EP, content=b"[]"), 400, "MALFORMED_REQUEST")
