"""`dbutils.notebook`: run another notebook in a fresh context and get its exit value; end
this one with a value.

`run` asks the control plane (Kiln's notebook-runs API, as the context's user) to run the
child on the same cluster, waits for it and returns its exit value; a failure, a timeout or a
cancellation raises `WorkflowException`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from kiln.driver.dbutils.api import ApiClient
from kiln.driver.dbutils.binding import (
    EXIT_MIME,
    NOTEBOOK_RUNS_API,
    RunBinding,
    marker,
    resolve_notebook_path,
)
from kiln.driver.dbutils.errors import ExecutionError, NotebookExit, WorkflowException
from kiln.driver.dbutils.help import Helpful

__all__ = ["NotebookUtils"]

# How long one poll of a child run waits on the server before answering.
POLL_WAIT_SECONDS = 10
_TERMINAL = {"SUCCESS", "FAILED", "TIMEDOUT", "CANCELED"}


class NotebookUtils(Helpful):
    """Utilities for the control flow of a notebook."""

    _TITLE = "dbutils.notebook"
    _INTRO = "utilities for the control flow of a notebook."
    _HELP = ("exit", "run")

    def __init__(
        self,
        api: ApiClient,
        cluster_id: str,
        binding: Callable[[], RunBinding | None],
        emit: Callable[[dict[str, Any]], None],
    ) -> None:
        self._api = api
        self._cluster_id = cluster_id
        self._binding = binding
        self._emit = emit

    def exit(self, value: str) -> None:
        """This method lets you exit a notebook with a value."""
        text = value if isinstance(value, str) else str(value)
        if self._binding() is not None:
            self._emit(marker(EXIT_MIME, {"value": text}, f"Notebook exited: {text}"))
        raise NotebookExit(text)

    def run(
        self,
        path: str,
        timeout_seconds: int,
        arguments: dict[str, str] | None = None,
    ) -> str | None:
        """This method runs a notebook and returns its exit value (None without one)."""
        binding = self._binding()
        absolute = resolve_notebook_path(path, binding.notebook_path if binding else None)
        if (
            isinstance(timeout_seconds, bool)
            or not isinstance(timeout_seconds, int)
            or timeout_seconds < 0
        ):
            raise ExecutionError(
                "java.lang.IllegalArgumentException: timeout_seconds must be an int >= 0."
            )
        arguments = arguments or {}
        if not isinstance(arguments, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in arguments.items()
        ):
            raise ExecutionError(
                "java.lang.IllegalArgumentException: arguments must map str names to str values."
            )
        body = {
            "cluster_id": self._cluster_id,
            "notebook_path": absolute,
            "base_parameters": arguments,
            "timeout_seconds": timeout_seconds,
            "parent_run_id": binding.run_id if binding else None,
        }
        run_id = str(self._api.post(f"{NOTEBOOK_RUNS_API}/submit", body)["run_id"])
        try:
            state = self._wait(run_id)
        except BaseException:
            # Interrupted (a cancel of this command): the child stops too.
            self._api.post(f"{NOTEBOOK_RUNS_API}/cancel", {"run_id": run_id})
            raise
        result = state.get("state")
        if result == "SUCCESS":
            value = state.get("result")
            return value if isinstance(value, str) else None
        if result == "TIMEDOUT":
            raise WorkflowException(
                f"com.databricks.WorkflowException: com.databricks.NotebookExecutionException: "
                f"Notebook {absolute} timed out after {timeout_seconds} seconds"
            )
        reason = state.get("error") or result
        raise WorkflowException(
            f"com.databricks.WorkflowException: com.databricks.NotebookExecutionException: "
            f"{result}: {reason}"
        )

    def _wait(self, run_id: str) -> dict[str, Any]:
        while True:
            state = self._api.get(
                f"{NOTEBOOK_RUNS_API}/get", {"run_id": run_id, "wait_seconds": POLL_WAIT_SECONDS}
            )
            if state.get("state") in _TERMINAL:
                return state
            time.sleep(0.05)  # the server already waited; this only guards against a busy loop
