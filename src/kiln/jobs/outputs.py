"""What a task attempt leaves behind: its task values (checked against Databricks' limits)
and its output for get-output (exit value, logs and errors capped at 5 MB)."""

from __future__ import annotations

import json
from typing import Any

from kiln.jobs.runners.base import TaskOutcome

__all__ = [
    "MAX_OUTPUT_BYTES",
    "MAX_TASK_VALUES",
    "MAX_VALUE_BYTES",
    "check_values",
    "output_of",
]

MAX_VALUE_BYTES = 48 * 1024
MAX_TASK_VALUES = 250
MAX_OUTPUT_BYTES = 5 * 1024 * 1024


def check_values(values: dict[str, Any]) -> str | None:
    """Why a task's values break the limits (None when they do not)."""
    if len(values) > MAX_TASK_VALUES:
        return f"A task may set at most {MAX_TASK_VALUES} task values (it set {len(values)})."
    for key, value in values.items():
        if len(json.dumps(value).encode()) > MAX_VALUE_BYTES:
            return f"Task value {key!r} is larger than 48 KiB as JSON."
    return None


def _cap(text: str | None) -> tuple[str | None, bool]:
    if text is None:
        return None, False
    data = text.encode()
    if len(data) <= MAX_OUTPUT_BYTES:
        return text, False
    return data[:MAX_OUTPUT_BYTES].decode("utf-8", errors="ignore"), True


def output_of(outcome: TaskOutcome) -> dict[str, Any]:
    """The stored get-output fields of an attempt's outcome."""
    out: dict[str, Any] = {}
    if outcome.exit_value is not None:
        result, truncated = _cap(outcome.exit_value)
        out["notebook_output"] = {"result": result, "truncated": truncated}
    if outcome.logs is not None:
        logs, truncated = _cap(outcome.logs)
        out["logs"] = logs
        out["logs_truncated"] = truncated
    if outcome.error:
        out["error"] = outcome.error
    if outcome.error_trace:
        out["error_trace"] = _cap(outcome.error_trace)[0]
    if outcome.run_job_run_id is not None:
        out["run_job_output"] = {"run_id": outcome.run_job_run_id}
    return out
