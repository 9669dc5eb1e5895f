"""`dbutils.jobs.taskValues`: values a job task passes to the tasks after it.

`set` keeps the value in the context and, in a notebook run, emits it for the runner, which
returns every value with the run's result (so the jobs service can keep them per task run);
`get` reads the upstream values the run was started with.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from kiln.driver.dbutils.binding import TASK_VALUE_MIME, RunBinding, marker
from kiln.driver.dbutils.errors import ExecutionError
from kiln.driver.dbutils.help import Helpful

__all__ = ["JobsUtils", "TaskValuesUtils"]

# Databricks' limits: a key of at most 128 characters, a value of at most 48 KiB as JSON.
MAX_KEY_LENGTH = 128
MAX_VALUE_BYTES = 48 * 1024


class TaskValuesUtils(Helpful):
    """Sets and gets values shared between the tasks of a job run."""

    _TITLE = "dbutils.jobs.taskValues"
    _INTRO = "utilities for leveraging job task values."
    _HELP = ("get", "set")

    def __init__(
        self, binding: Callable[[], RunBinding | None], emit: Callable[[dict[str, Any]], None]
    ) -> None:
        self._binding = binding
        self._emit = emit
        self._values: dict[str, Any] = {}

    def set(self, key: str, value: Any) -> None:
        """Sets a task value on the current task run (any JSON-serializable value)."""
        if not isinstance(key, str) or not key or len(key) > MAX_KEY_LENGTH:
            raise ExecutionError(
                "java.lang.IllegalArgumentException: key must be a str of 1-"
                f"{MAX_KEY_LENGTH} characters."
            )
        try:
            encoded = json.dumps(value)
        except (TypeError, ValueError) as exc:
            raise ExecutionError(
                f"java.lang.IllegalArgumentException: the value of {key} is not "
                f"JSON-serializable: {exc}"
            ) from None
        if len(encoded.encode()) > MAX_VALUE_BYTES:
            raise ExecutionError(
                f"java.lang.IllegalArgumentException: the value of {key} is larger than "
                "48 KiB as JSON."
            )
        value = json.loads(encoded)
        self._values[key] = value
        if self._binding() is not None:
            self._emit(marker(TASK_VALUE_MIME, {"key": key, "value": value}))

    def get(self, taskKey: str, key: str, default: Any = None, debugValue: Any = None) -> Any:
        """Gets a value set by an upstream task (debugValue outside a job run)."""
        binding = self._binding()
        if binding is None or binding.task_values is None:
            if debugValue is None:
                raise TypeError(
                    "Must pass debugValue when calling get outside of a job context. debugValue "
                    "cannot be None."
                )
            return debugValue
        if binding.task_key is not None and taskKey == binding.task_key and key in self._values:
            return self._values[key]
        values = binding.task_values.get(taskKey)
        if values is None:
            if default is not None:
                return default
            raise ValueError(f"Task {taskKey!r} is not an upstream task of this task run.")
        if key in values:
            return values[key]
        if default is not None:
            return default
        raise ValueError(f"Task {taskKey!r} set no value for key {key!r}.")

    def _all(self) -> dict[str, Any]:
        """Every value this context set."""
        return dict(self._values)


class JobsUtils(Helpful):
    """Utilities for jobs."""

    _TITLE = "dbutils.jobs"
    _INTRO = "utilities for leveraging jobs features."
    _HELP = ("taskValues",)

    def __init__(self, task_values: TaskValuesUtils) -> None:
        self.taskValues = task_values
