"""Models that carry their feature lookups: logged with `feature_spec.json`, scored by key.

`log_model` saves the model with its MLflow flavor, writes the training set's lookups (and the
label) into `feature_spec.json` in the same folder and logs the folder as the run's artifact
`artifact_path`; `score_batch` downloads a model, joins the features the spec names onto the
given keys and predicts with the model's pyfunc.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kiln.driver.feature_store.lookups import FeatureLookup

if TYPE_CHECKING:
    from kiln.driver.feature_store.client import FeatureEngineeringClient, TrainingSet

__all__ = ["SPEC_FILE", "log_model_with_lookups", "score_with_lookups"]

SPEC_FILE = "feature_spec.json"


def log_model_with_lookups(
    model: Any,
    artifact_path: str,
    flavor: Any,
    training_set: TrainingSet,
    registered_model_name: str | None = None,
    **kwargs: Any,
) -> Any:
    """Log the model and its lookups in the active run; the registered version if named."""
    import mlflow

    spec = {
        "feature_lookups": [lookup.to_spec() for lookup in training_set.feature_lookups],
        "label": training_set.label,
        "exclude_columns": training_set.exclude_columns,
    }
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / "model"
        flavor.save_model(model, str(local), **kwargs)
        (local / SPEC_FILE).write_text(json.dumps(spec, indent=2))
        active = mlflow.active_run()
        run = active or mlflow.start_run()
        try:
            mlflow.log_artifacts(str(local), artifact_path)
            uri = f"runs:/{run.info.run_id}/{artifact_path}"
        finally:
            if active is None:
                mlflow.end_run()
    if registered_model_name:
        return mlflow.register_model(uri, registered_model_name)
    return uri


def score_with_lookups(client: FeatureEngineeringClient, model_uri: str, frame: Any) -> Any:
    """`frame` (pandas) with the model's features joined and its `prediction` column."""
    import mlflow

    local = Path(mlflow.artifacts.download_artifacts(model_uri))
    try:
        spec = json.loads((local / SPEC_FILE).read_text())
    except FileNotFoundError:
        raise ValueError(f"{model_uri} was not logged with feature lookups.") from None
    lookups = [FeatureLookup.from_spec(s) for s in spec["feature_lookups"]]
    joined = client.join_features(frame, lookups)
    label = spec.get("label")
    drop = [label] if isinstance(label, str) else list(label or [])
    drop += list(spec.get("exclude_columns") or [])
    model = mlflow.pyfunc.load_model(str(local))
    features = joined.drop(columns=[c for c in drop if c in joined.columns])
    names = model.metadata.get_input_schema()
    if names is not None:
        features = features[names.input_names()]
    out = joined.copy()
    out["prediction"] = list(model.predict(features))
    return out
