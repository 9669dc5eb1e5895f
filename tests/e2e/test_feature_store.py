"""The feature store end to end: a model logged with its lookups, registered in Kiln's Unity
Catalog registry with the unchanged mlflow client, then scored by key with score_batch."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_mlflow import run_client

from support import Server

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
