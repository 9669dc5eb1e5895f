"""The feature store and batch scoring end to end: a model logged with its lookups, registered
in Kiln's Unity Catalog registry with the unchanged mlflow client, then scored by key with
score_batch; a registered model scored on a cluster with `mlflow.pyfunc.spark_udf`.

One server and one single-node cluster (one Python context) serve the whole module.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from compute_support import (
    compute_env,
    running_compute_server,
    single_node_cluster,
    unique,
)
from databricks.sdk import WorkspaceClient
from databricks.sdk.service.compute import CommandStatus, ContextStatus, Language, ResultType
from test_mlflow import run_client

from support import Server, assert_error

CMD_WAIT = timedelta(minutes=8)


@pytest.fixture(scope="module")
def compute_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The module's server (clusters need one of their own)."""
    data = tmp_path_factory.mktemp("features") / "data"
    with running_compute_server(data, compute_env()) as srv:
        yield srv


@pytest.fixture(scope="module")
def server(compute_server: Server) -> Server:
    """Every test of the module uses the module's own server."""
    return compute_server


@pytest.fixture(scope="module")
def cluster_ctx(w: WorkspaceClient) -> tuple[str, str]:
    """A single-node cluster and a Python context on it: (cluster id, context id)."""
    cluster = single_node_cluster(w, "features")
    assert cluster.cluster_id is not None
    created = w.command_execution.create_and_wait(
        cluster_id=cluster.cluster_id, language=Language.PYTHON, timeout=CMD_WAIT
    )
    assert created.status == ContextStatus.RUNNING and created.id
    return cluster.cluster_id, created.id


def in_context(w: WorkspaceClient, cluster_ctx: tuple[str, str], code: str) -> Any:
    """Run `code` in the module's context; the JSON its last printed line holds."""
    cid, ctx = cluster_ctx
    response = w.command_execution.execute_and_wait(
        cluster_id=cid, context_id=ctx, command=code, language=Language.PYTHON, timeout=CMD_WAIT
    )
    assert response.status == CommandStatus.FINISHED, response
    assert response.results is not None
    assert response.results.result_type == ResultType.TEXT, response.results.cause
    return json.loads(str(response.results.data).strip().splitlines()[-1])


SPARK_UDF = r"""
import json
import mlflow
import pandas as pd
from mlflow import MlflowClient
from sklearn.linear_model import LinearRegression

mlflow.set_tracking_uri("databricks")
mlflow.set_experiment("/Users/admin@kiln.local/batch-scoring")
X = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0, 5.0], "b": [0.5, -1.0, 2.0, 0.0, 7.0]})
model = LinearRegression().fit(X, 3 * X["a"] - 2 * X["b"] + 1)
with mlflow.start_run():
    info = mlflow.sklearn.log_model(
        model, name="model", input_example=X[:1], registered_model_name="main.default.udf_model"
    )
MlflowClient().set_registered_model_alias(
    "main.default.udf_model", "champion", info.registered_model_version
)
sdf = spark.createDataFrame(X).repartition(2)
out = {"want": [float(p) for p in model.predict(X)]}
for uri in ("models:/main.default.udf_model@champion", "models:/main.default.udf_model/1"):
    udf = mlflow.pyfunc.spark_udf(spark, uri, result_type="double")
    rows = sdf.withColumn("prediction", udf("a", "b")).orderBy("a").collect()
    out[uri] = [r.prediction for r in rows]
print(json.dumps(out))
"""


@pytest.mark.slow
def test_spark_udf_scores_a_registered_model_on_a_cluster(
    w: WorkspaceClient, cluster_ctx: tuple[str, str]
) -> None:
    result = in_context(w, cluster_ctx, SPARK_UDF)
    assert len(result["want"]) == 5
    assert result["models:/main.default.udf_model@champion"] == result["want"]
    assert result["models:/main.default.udf_model/1"] == result["want"]


SCRIPT = r"""
import json, os
import mlflow
import pandas as pd
from sklearn.linear_model import LinearRegression
from kiln.driver.feature_store import FeatureEngineeringClient, FeatureLookup

mlflow.set_tracking_uri("databricks")
mlflow.set_experiment(f"/Users/{os.environ['KILN_USER']}/features")
fe = FeatureEngineeringClient(root=os.environ["KILN_FEATURE_STORE_ROOT"])
T = pd.Timestamp
fe.create_table(
    "main.default.spend", primary_keys="customer_id", timestamp_keys="ts",
    df=pd.DataFrame({"customer_id": ["c1", "c1", "c2"],
                     "ts": [T("2024-01-01"), T("2024-01-05"), T("2024-01-03")],
                     "spend": [10.0, 20.0, 5.0]}),
)
events = pd.DataFrame({"customer_id": ["c1", "c1", "c2"],
                       "event_ts": [T("2024-01-02"), T("2024-01-06"), T("2024-01-04")],
                       "label": [1.0, 2.0, 0.5]})
lookups = [FeatureLookup("main.default.spend", "customer_id", timestamp_lookup_key="event_ts")]
ts = fe.create_training_set(events, lookups, label="label", exclude_columns=["event_ts"])
train = ts.load_df()
X = train[["spend"]]
model = LinearRegression().fit(X, train["label"])
with mlflow.start_run():
    mv = fe.log_model(model, "model", flavor=mlflow.sklearn, training_set=ts,
                      registered_model_name=os.environ["KILN_MODEL"], input_example=X[:1])
scored = fe.score_batch(f"models:/{os.environ['KILN_MODEL']}/{mv.version}",
                        events[["customer_id", "event_ts"]])
print("RESULT " + json.dumps({
    "version": mv.version,
    "columns": list(scored.columns),
    "spend": scored["spend"].tolist(),
    "predictions": [round(float(p), 6) for p in scored["prediction"]],
    "expected": [round(float(p), 6) for p in model.predict(X)],
}))
"""


@pytest.mark.slow
def test_log_model_with_lookups_and_score_batch(server: Server, tmp_path: Path) -> None:
    result = run_client(
        server,
        server.token,
        "admin@kiln.local",
        SCRIPT,
        KILN_MODEL="main.default.fs_model",
        KILN_FEATURE_STORE_ROOT=str(tmp_path / "features"),
    )
    assert result["version"] == "1"
    assert result["columns"] == ["customer_id", "event_ts", "spend", "prediction"]
    assert result["spend"] == [10.0, 20.0, 5.0]
    assert result["predictions"] == result["expected"]


LINEAGE_NOTEBOOK = """# Databricks notebook source
import mlflow
import pandas as pd
from sklearn.linear_model import LinearRegression
from kiln.driver.feature_store import FeatureEngineeringClient, FeatureLookup

# No tracking URI and no experiment set: a notebook run tracks to Kiln, into its notebook's
# experiment, by default.
fe = FeatureEngineeringClient(root=ROOT)
fe.create_table(
    "main.default.lineage_fs", primary_keys="k",
    df=pd.DataFrame({"k": [1, 2, 3], "f": [1.0, 3.0, 4.0]}),
)
fe.write_table("main.default.lineage_fs", pd.DataFrame({"k": [2], "f": [5.0]}))
ts = fe.create_training_set(
    pd.DataFrame({"k": [1, 2, 3], "y": [2.0, 10.0, 8.0]}),
    [FeatureLookup("main.default.lineage_fs", "k")], label="y",
)
df = ts.load_df()
model = LinearRegression().fit(df[["f"]], df["y"])
with mlflow.start_run():
    fe.log_model(model, "model", flavor=mlflow.sklearn, training_set=ts,
                 registered_model_name="main.default.lineage_model", input_example=df[["f"]][:1])
"""


@pytest.fixture(scope="module")
def lineage_job(
    w: WorkspaceClient, cluster_ctx: tuple[str, str], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """A job whose notebook creates and writes a feature table, builds a training set from it
    and logs a model with its lookups; its ids once its run succeeded."""
    import base64

    from databricks.sdk.service.jobs import NotebookTask, Task
    from databricks.sdk.service.workspace import ImportFormat, Language

    root = tmp_path_factory.mktemp("lineage-store")
    path = "/Users/admin@kiln.local/fs/producer"
    w.workspace.mkdirs("/Users/admin@kiln.local/fs")
    source = LINEAGE_NOTEBOOK.replace("root=ROOT", f"root={str(root)!r}")
    w.workspace.import_(
        path,
        content=base64.b64encode(source.encode()).decode(),
        format=ImportFormat.SOURCE,
        language=Language.PYTHON,
        overwrite=True,
    )
    job = w.jobs.create(
        name=unique("lineage"),
        tasks=[
            Task(
                task_key="produce",
                existing_cluster_id=cluster_ctx[0],
                notebook_task=NotebookTask(notebook_path=path),
            )
        ],
    )
    run = w.jobs.run_now_and_wait(job_id=job.job_id, timeout=CMD_WAIT)
    assert run.state is not None and run.state.result_state is not None
    assert run.state.result_state.value == "SUCCESS", run.state
    notebook_id = w.workspace.get_status(path).object_id
    return {
        "job_id": job.job_id,
        "run_id": run.run_id,
        "path": path,
        "notebook_id": notebook_id,
        "root": str(root),
    }


FT = "/api/2.0/feature-store/feature-tables"


@pytest.mark.slow
def test_feature_table_lineage(compute_server: Server, lineage_job: dict[str, Any]) -> None:
    with compute_server.client() as http:
        got = http.get(f"{FT}/get", params={"name": "main.default.lineage_fs"})
        assert got.status_code == 200, got.text
        table = got.json()["feature_table"]
        assert table["name"] == "main.default.lineage_fs"
        assert table["primary_keys"] == ["k"] and table["timestamp_keys"] == []
        # The notebook created the table (its later write does not list it twice).
        assert [
            (p["notebook_path"], p["notebook_id"], p["producer_action"])
            for p in table["notebook_producers"]
        ] == [(lineage_job["path"], lineage_job["notebook_id"], "CREATE")]
        assert [(p["job_id"], p["producer_action"]) for p in table["job_producers"]] == [
            (lineage_job["job_id"], "CREATE")
        ]
        assert table["job_producers"][0]["run_id"] == lineage_job["run_id"]
        # The model was logged to the notebook's own experiment: named the notebook's path,
        # tagged a notebook experiment, holding the run.
        got = http.get(
            "/api/2.0/mlflow/experiments/get-by-name",
            params={"experiment_name": lineage_job["path"]},
        )
        assert got.status_code == 200, got.text
        experiment = got.json()["experiment"]
        tags = {t["key"]: t["value"] for t in experiment.get("tags", [])}
        assert tags.get("mlflow.experimentType") == "NOTEBOOK", tags
        runs = http.post(
            "/api/2.0/mlflow/runs/search",
            json={"experiment_ids": [experiment["experiment_id"]]},
        ).json()
        assert len(runs.get("runs", [])) == 1, runs
        lineage = http.get(f"{FT}/lineage", params={"name": "MAIN.default.lineage_fs"}).json()
        assert [(m["name"], m["version"]) for m in lineage["models"]] == [
            ("main.default.lineage_model", "1")
        ]
        assert [n["notebook_path"] for n in lineage["notebooks"]] == [lineage_job["path"]]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        (
            "post",
            "/create",
            {"name": "nodots", "primary_keys": ["k"]},
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        ("post", "/create", {"name": "main.default.x"}, 400, "INVALID_PARAMETER_VALUE"),
        (
            "post",
            "/create",
            {"name": "main.default.x", "primary_keys": [1]},
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            "post",
            "/create",
            {"name": "main.default.x", "primary_keys": ["k", "k"]},
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            "post",
            "/create",
            {"name": "main.default.x", "primary_keys": ["k"], "timestamp_keys": ["a", "b"]},
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            "post",
            "/create",
            {"name": "main.default.x", "primary_keys": ["k"], "timestamp_keys": ["k"]},
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            "post",
            "/create",
            {"name": "main.default.x", "primary_keys": ["k"], "description": 3},
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            "post",
            "/create",
            {"name": "main.default.x", "primary_keys": ["k"], "run_id": "a/b"},
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            "post",
            "/create",
            {"name": "main.default.x", "primary_keys": ["k"], "notebook_path": "rel/x"},
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            "post",
            "/create",
            {"name": "main.default.x", "primary_keys": ["k"], "notebook_path": "/a/../../x"},
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        ("post", "/write", {"name": "main.default.missing"}, 404, "RESOURCE_DOES_NOT_EXIST"),
        ("post", "/consume", {"names": []}, 400, "INVALID_PARAMETER_VALUE"),
        ("post", "/consume", {"names": ["main.default.missing"]}, 404, "RESOURCE_DOES_NOT_EXIST"),
        ("post", "/delete", {"name": "main.default.missing"}, 404, "RESOURCE_DOES_NOT_EXIST"),
        ("get", "/get", {"name": "main.default.missing"}, 404, "RESOURCE_DOES_NOT_EXIST"),
        ("get", "/get", {"name": "../etc"}, 400, "INVALID_PARAMETER_VALUE"),
        ("get", "/lineage", {"name": "main.default.missing"}, 404, "RESOURCE_DOES_NOT_EXIST"),
    ],
)
def test_feature_table_bad_input(
    compute_server: Server,
    method: str,
    path: str,
    body: dict[str, Any],
    status: int,
    code: str,
) -> None:
    with compute_server.client() as http:
        if method == "get":
            response = http.get(FT + path, params=body)
        else:
            response = http.post(FT + path, json=body)
        assert_error(response, status, code)


def test_feature_table_create_conflicts_and_consumers(compute_server: Server) -> None:
    with compute_server.client() as http:
        assert_error(http.post(f"{FT}/create", content=b"{nope"), 400, "MALFORMED_REQUEST")
        body = {"name": "main.default.conflict_fs", "primary_keys": ["k"]}
        created = http.post(f"{FT}/create", json=body)
        assert created.status_code == 200, created.text
        assert created.json()["feature_table"]["notebook_producers"] == []
        assert_error(http.post(f"{FT}/create", json=body), 409, "RESOURCE_ALREADY_EXISTS")
        bad_version = {"names": [body["name"]], "model_name": "m", "model_version": "0"}
        assert_error(http.post(f"{FT}/consume", json=bad_version), 400, "INVALID_PARAMETER_VALUE")
        bad_model = {"names": [body["name"]], "model_name": "a b", "model_version": "1"}
        assert_error(http.post(f"{FT}/consume", json=bad_model), 400, "INVALID_PARAMETER_VALUE")
        used = {"names": [body["name"]], "model_name": "main.default.m", "model_version": 2}
        assert http.post(f"{FT}/consume", json=used).status_code == 200
        assert http.post(f"{FT}/consume", json=used).status_code == 200  # recorded once
        lineage = http.get(f"{FT}/lineage", params={"name": body["name"]}).json()
        assert [(m["name"], m["version"]) for m in lineage["models"]] == [("main.default.m", "2")]
        assert http.post(f"{FT}/delete", json={"name": body["name"]}).status_code == 200
        assert_error(http.get(f"{FT}/get", params=body), 404, "RESOURCE_DOES_NOT_EXIST")


ONLINE = r"""
import json
import mlflow
import pandas as pd
from kiln.driver.feature_store import FeatureEngineeringClient, OnlineStoreSpec

mlflow.set_tracking_uri("databricks")
fe = FeatureEngineeringClient(root=ROOT)
if NEW_F is not None:
    fe.write_table("main.default.lineage_fs", pd.DataFrame({"k": [1], "f": [NEW_F]}))
published = fe.publish_table("main.default.lineage_fs", OnlineStoreSpec())
features = fe.read_table("main.default.lineage_fs").set_index("k").loc[[1, 2], ["f"]]
model = mlflow.pyfunc.load_model("models:/main.default.lineage_model/1")
print(json.dumps({"num_keys": published["num_keys"],
                  "want": [float(p) for p in model.predict(features.reset_index(drop=True))]}))
"""


def _publish(w: WorkspaceClient, cluster_ctx: tuple[str, str], root: str, new_f: Any) -> Any:
    code = ONLINE.replace("ROOT", repr(root)).replace("NEW_F", repr(new_f))
    return in_context(w, cluster_ctx, code)


@pytest.mark.slow
def test_served_model_looks_features_up_in_the_online_store(
    compute_server: Server,
    w: WorkspaceClient,
    cluster_ctx: tuple[str, str],
    lineage_job: dict[str, Any],
) -> None:
    first = _publish(w, cluster_ctx, lineage_job["root"], None)
    assert first["num_keys"] == 3
    name = "online-lookups"
    entity = {"entity_name": "main.default.lineage_model", "entity_version": "1"}
    with compute_server.client() as http:
        got = http.get(f"{FT}/get", params={"name": "main.default.lineage_fs"}).json()
        assert [s["name"] for s in got["feature_table"]["online_stores"]] == ["kiln-sqlite"]
        created = http.post(
            "/api/2.0/serving-endpoints",
            json={"name": name, "config": {"served_entities": [entity]}},
        )
        assert created.status_code == 200, created.text
        deadline = time.monotonic() + 400
        while (body := http.get(f"/api/2.0/serving-endpoints/{name}").json())["state"][
            "config_update"
        ] == "IN_PROGRESS":
            assert time.monotonic() < deadline, body
            time.sleep(0.5)
        assert body["state"]["ready"] == "READY", body
        url = f"/serving-endpoints/{name}/invocations"
        keys_only = {"dataframe_records": [{"k": 1}, {"k": 2}]}
        answer = http.post(url, json=keys_only)
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"predictions": first["want"]}
        # A new value written and published is what the next request sees.
        second = _publish(w, cluster_ctx, lineage_job["root"], 7.0)
        assert second["want"] != first["want"]
        assert http.post(url, json=keys_only).json() == {"predictions": second["want"]}
        # A feature the request carries wins over the online store's.
        split = {"dataframe_split": {"columns": ["k", "f"], "data": [[1, 1.0]]}}
        assert http.post(url, json=split).json() == {"predictions": first["want"][:1]}
        # A key the online store does not hold, or no key column at all: a 400 naming it.
        missing = http.post(url, json={"dataframe_records": [{"k": 1}, {"k": 99}]})
        assert missing.status_code == 400, missing.text
        assert "No row in the online store of main.default.lineage_fs" in missing.text
        assert "[99]" in missing.text
        no_key = http.post(url, json={"dataframe_records": [{"x": 1}]})
        assert no_key.status_code == 400 and "no lookup key column" in no_key.text
        assert http.delete(f"/api/2.0/serving-endpoints/{name}").status_code == 200


def test_publish_bad_input(compute_server: Server) -> None:
    with compute_server.client() as http:
        table = {"name": "main.default.publish_fs", "primary_keys": ["k"]}
        assert http.post(f"{FT}/create", json=table).status_code == 200
        rows = {"columns": ["k", "f"], "data": [[1, 2.0]]}
        cases: list[tuple[dict[str, Any], int, str]] = [
            ({"name": "main.default.missing", "rows": rows}, 404, "RESOURCE_DOES_NOT_EXIST"),
            ({"name": "bad", "rows": rows}, 400, "INVALID_PARAMETER_VALUE"),
            ({**table, "rows": rows, "mode": "append"}, 400, "INVALID_PARAMETER_VALUE"),
            ({**table, "rows": [[1]]}, 400, "INVALID_PARAMETER_VALUE"),
            (
                {**table, "rows": {"columns": ["k"], "data": [[1, 2]]}},
                400,
                "INVALID_PARAMETER_VALUE",
            ),
            ({**table, "rows": {"columns": [1], "data": []}}, 400, "INVALID_PARAMETER_VALUE"),
            (
                {**table, "rows": {"columns": ["f"], "data": [[1.0]]}},
                400,
                "INVALID_PARAMETER_VALUE",
            ),
            (
                {**table, "rows": {"columns": ["k", "f"], "data": [[1, 1.0], [1.0, 2.0]]}},
                400,
                "INVALID_PARAMETER_VALUE",
            ),
        ]
        for body, status, code in cases:
            assert_error(http.post(f"{FT}/publish", json=body), status, code)
        ok = http.post(f"{FT}/publish", json={**table, "rows": rows, "mode": "overwrite"})
        assert ok.status_code == 200, ok.text
        assert ok.json()["num_keys"] == 1
        assert http.post(f"{FT}/delete", json={"name": table["name"]}).status_code == 200
