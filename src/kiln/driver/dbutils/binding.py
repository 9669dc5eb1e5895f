"""What a notebook run binds into the context it runs in, and the outputs dbutils emits for
the runner (exit value, task values, restart): a contract between dbutils inside the context
and the notebook runner outside it.
"""

from __future__ import annotations

import json
import posixpath
from dataclasses import dataclass, field
from typing import Any

from kiln.driver.dbutils.errors import ExecutionError

__all__ = [
    "EXIT_MIME",
    "NOTEBOOK_RUNS_API",
    "RESTART_MIME",
    "TASK_VALUE_MIME",
    "RunBinding",
    "marker",
    "resolve_notebook_path",
]

# Outputs with these MIME types carry data for the runner; it takes them out of the notebook.
EXIT_MIME = "application/vnd.kiln.notebook-exit+json"
TASK_VALUE_MIME = "application/vnd.kiln.task-value+json"
RESTART_MIME = "application/vnd.kiln.restart-python+json"


@dataclass(frozen=True, slots=True)
class RunBinding:
    """The notebook run a context is executing, if any."""

    notebook_path: str
    run_id: str | None = None
    parameters: dict[str, str] = field(default_factory=dict)
    # Upstream tasks' values ({task_key: {key: value}}) when the run is a job task; None outside
    # a job (then `taskValues.get` answers its debugValue, as Databricks does).
    task_values: dict[str, dict[str, Any]] | None = None
    task_key: str | None = None

    def to_json(self) -> str:
        """The binding as JSON (what the runner sends into the context)."""
        return json.dumps(
            {
                "notebook_path": self.notebook_path,
                "run_id": self.run_id,
                "parameters": self.parameters,
                "task_values": self.task_values,
                "task_key": self.task_key,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> RunBinding:
        """Parse `to_json`'s output."""
        data = json.loads(text)
        return cls(
            notebook_path=str(data["notebook_path"]),
            run_id=data.get("run_id"),
            parameters={str(k): str(v) for k, v in (data.get("parameters") or {}).items()},
            task_values=data.get("task_values"),
            task_key=data.get("task_key"),
        )


def marker(mime: str, payload: dict[str, Any], text: str = "") -> dict[str, Any]:
    """A display_data output carrying `payload` for the runner."""
    return {
        "output_type": "display_data",
        "data": {mime: payload, "text/plain": text},
        "metadata": {},
    }


def resolve_notebook_path(target: object, current: str | None) -> str:
    """A notebook path as given to `%run` or `dbutils.notebook.run`, made absolute.

    Relative paths (`./x`, `../x`, `x`) are relative to the folder of the current notebook;
    `..` may not climb above the workspace root.
    """
    if not isinstance(target, str) or not target.strip():
        raise ExecutionError(
            "java.lang.IllegalArgumentException: a notebook path must be a non-empty str."
        )
    target = target.strip()
    if target.startswith("/"):
        base = "/"
    elif current is None:
        raise ExecutionError(
            f"java.lang.IllegalArgumentException: relative notebook path {target!r} needs a "
            "notebook to be relative to; give an absolute path."
        )
    else:
        base = posixpath.dirname(current) or "/"
    parts: list[str] = [] if base == "/" else base.strip("/").split("/")
    for part in target.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                raise ExecutionError(
                    f"java.lang.IllegalArgumentException: notebook path {target!r} climbs above "
                    "the workspace root."
                )
            parts.pop()
        else:
            parts.append(part)
    if not parts:
        raise ExecutionError(f"java.lang.IllegalArgumentException: {target!r} names no notebook.")
    return "/" + "/".join(parts)


# Kiln's notebook-runs API (what `dbutils.notebook.run` calls); not a Databricks path.
NOTEBOOK_RUNS_API = "/api/2.0/kiln/notebook-runs"
