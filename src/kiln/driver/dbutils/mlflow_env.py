"""MLflow in a notebook run logs to the notebook's experiment unless the notebook picks one.

As in Databricks, where `mlflow.start_run()` in a notebook without `set_experiment` logs to
the notebook's experiment. The experiment is named the notebook's path; MLflow's client
creates it on first use, and Kiln's server makes that name the notebook's own experiment (the
notebook is its workspace object; see `kiln.ml.experiment_objects`).
"""

from __future__ import annotations

import os
import sys

__all__ = ["use_notebook_experiment"]


def use_notebook_experiment(notebook_path: str) -> None:
    """Point this process's MLflow client at `notebook_path`'s experiment by default."""
    if "KILN_CONTEXT_ID" not in os.environ:
        return  # not a context's process (dbutils used in-process, as tests do)
    os.environ["MLFLOW_EXPERIMENT_NAME"] = notebook_path
    os.environ.pop("MLFLOW_EXPERIMENT_ID", None)
    # A context reused from an earlier run may hold that run's `set_experiment` choice.
    fluent = sys.modules.get("mlflow.tracking.fluent")
    if fluent is not None:
        fluent._active_experiment_id = None  # type: ignore[attr-defined]
