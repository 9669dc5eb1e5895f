"""Registry webhook payloads, signatures and the events of MLflow's own registry calls."""

from __future__ import annotations

import hashlib
import hmac
import json

from kiln.ml.webhooks import mlflow_events, payload, sign, stage_events


def test_signature_is_hmac_sha256_of_the_body() -> None:
    body = payload("COMMENT_CREATED", "w1", {"model_name": "m", "version": "1", "text": None})
    data = json.loads(body)
    assert data["event"] == "COMMENT_CREATED" and data["webhook_id"] == "w1"
    assert "text" not in data and isinstance(data["event_timestamp"], int)
    assert sign("k", body) == hmac.new(b"k", body, hashlib.sha256).hexdigest()


def test_stage_events() -> None:
    assert stage_events("transition", "Production") == [
        "MODEL_VERSION_TRANSITIONED_STAGE",
        "MODEL_VERSION_TRANSITIONED_TO_PRODUCTION",
    ]
    assert stage_events("transition", "None") == ["MODEL_VERSION_TRANSITIONED_STAGE"]
    assert stage_events("request", "Archived") == [
        "TRANSITION_REQUEST_CREATED",
        "TRANSITION_REQUEST_TO_ARCHIVED_CREATED",
    ]


def test_events_of_mlflow_registry_calls() -> None:
    mv = {"model_version": {"name": "m", "version": "2", "current_stage": "Staging"}}
    assert mlflow_events("registered-models/create", {"name": "m"}, {}) == (
        ["REGISTERED_MODEL_CREATED"],
        {"model_name": "m"},
    )
    assert mlflow_events("model-versions/create", {}, mv) == (
        ["MODEL_VERSION_CREATED"],
        {"model_name": "m", "version": "2"},
    )
    events, data = mlflow_events("model-versions/transition-stage", {}, mv)
    assert events[-1] == "MODEL_VERSION_TRANSITIONED_TO_STAGING" and data["to_stage"] == "Staging"
    tag = {"name": "m", "version": 2, "key": "k", "value": "v"}
    assert mlflow_events("model-versions/set-tag", tag, {}) == (
        ["MODEL_VERSION_TAG_SET"],
        {"model_name": "m", "version": "2", "tags": [{"key": "k", "value": "v"}]},
    )
    assert mlflow_events("registered-models/rename", {}, {}) == ([], {})
