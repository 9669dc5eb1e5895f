"""The ML lifecycle: MLflow tracking and registry, model serving, feature store.

Invariants: MLflow is imported only when the ML area is first used (never at server start);
its store is separate from Kiln's tables (see `tracking`); every artifact path a client gives
stays inside its run's or model version's root (see `artifacts`).
"""

from kiln.ml import artifacts, experiment_objects, uc_registry, webhooks
from kiln.ml.services import MlServices
from kiln.ml.tracking import ARTIFACT_ROOT, MlflowTracking, mlflow_store_uri

__all__ = [
    "ARTIFACT_ROOT",
    "MlServices",
    "MlflowTracking",
    "artifacts",
    "experiment_objects",
    "mlflow_store_uri",
    "uc_registry",
    "webhooks",
]
