"""A notebook run's MLflow client defaults to the notebook's experiment."""

from __future__ import annotations

import os
import sys
import types

import pytest

from kiln.driver.dbutils.mlflow_env import use_notebook_experiment


def test_the_notebook_path_names_the_default_experiment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KILN_CONTEXT_ID", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    use_notebook_experiment("/Users/x/nb")
    assert "MLFLOW_EXPERIMENT_NAME" not in os.environ  # only a context's process is changed
    monkeypatch.setenv("KILN_CONTEXT_ID", "ctx")
    monkeypatch.setenv("MLFLOW_EXPERIMENT_ID", "7")
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "/Users/x/other")
    fluent = types.ModuleType("mlflow.tracking.fluent")
    fluent._active_experiment_id = "7"  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "mlflow.tracking.fluent", fluent)
    use_notebook_experiment("/Users/x/nb")
    assert os.environ["MLFLOW_EXPERIMENT_NAME"] == "/Users/x/nb"
    assert "MLFLOW_EXPERIMENT_ID" not in os.environ
    # An earlier run's set_experiment in a reused context no longer applies.
    assert fluent._active_experiment_id is None  # type: ignore[attr-defined]
