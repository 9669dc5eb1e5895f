"""Model serving: endpoints over registered MLflow models, each served entity in its own process.

Invariants: only the scorer processes listen (on 127.0.0.1) and only Kiln reaches them; each
has a PID record and dies with the server; a config takes traffic only once all its eagerly
started entities answer, so a failed update never interrupts the config that serves. Each
entity runs in its model's environment (Kiln's own when it satisfies the model's requirements,
else a cached venv); models logged with feature lookups read their features from the online
store by key.
"""

from kiln.ml.serving.capture import Capture, CaptureRecord, InferenceTables, payload_table_name
from kiln.ml.serving.config import EndpointState, ServedEntity, normalize_config
from kiln.ml.serving.endpoints import (
    Deployment,
    QueryResult,
    ServingEndpoints,
    check_payload,
)
from kiln.ml.serving.environments import EnvironmentFailed, ModelEnvironment, ModelEnvironments
from kiln.ml.serving.online_store import OnlineStore
from kiln.ml.serving.scorer import Scorer, ScorerFailed, start_scorer

__all__ = [
    "Capture",
    "CaptureRecord",
    "Deployment",
    "EndpointState",
    "EnvironmentFailed",
    "InferenceTables",
    "ModelEnvironment",
    "ModelEnvironments",
    "OnlineStore",
    "QueryResult",
    "Scorer",
    "ScorerFailed",
    "ServedEntity",
    "ServingEndpoints",
    "check_payload",
    "normalize_config",
    "payload_table_name",
    "start_scorer",
]
