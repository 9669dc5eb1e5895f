"""The exceptions dbutils raises inside a context.

Databricks surfaces dbutils failures as `ExecutionError` with the JVM exception's name in the
message (`java.io.FileNotFoundException: ...`); user code often matches on that text, so the
messages keep the same leading names where Databricks has one.
"""

from __future__ import annotations

__all__ = [
    "ApiError",
    "ExecutionError",
    "InputWidgetNotDefined",
    "NotebookExit",
    "WorkflowException",
]


class ExecutionError(Exception):
    """A dbutils call failed."""


class ApiError(ExecutionError):
    """The control plane refused a request (its Databricks error code and message)."""

    def __init__(self, status: int, error_code: str, message: str) -> None:
        super().__init__(f"{error_code}: {message}")
        self.status = status
        self.error_code = error_code
        self.message = message


class InputWidgetNotDefined(ExecutionError):
    """`dbutils.widgets.get` of a widget that was neither defined nor passed as a parameter."""


class WorkflowException(ExecutionError):
    """`dbutils.notebook.run` of a child that failed, timed out or was cancelled."""


class NotebookExit(BaseException):
    """Raised by `dbutils.notebook.exit`: ends the command (or the notebook run) normally.

    A BaseException so that a user's `except Exception` does not swallow the exit.
    """

    def __init__(self, value: str) -> None:
        super().__init__(value)
        self.value = value
