"""The feature store client's calls to the control plane: feature tables' lineage.

Inside a context (DATABRICKS_HOST and DATABRICKS_TOKEN set, as Kiln sets them) the client
reports the tables it creates and writes and the training sets and models that use them, with
the notebook and run it runs in (from the run `dbutils` is bound to). Without that environment
(the client used outside Kiln) nothing is reported.
"""

from __future__ import annotations

import os
import re
import sys
from typing import Any

__all__ = ["ControlPlane", "run_context"]

TABLES = "/api/2.0/feature-store/feature-tables"
TIMEOUT_S = 60.0


def run_context() -> dict[str, str]:
    """The notebook path and run id of the notebook run this process executes, if any."""
    main = sys.modules.get("__main__")
    dbutils = getattr(main, "dbutils", None) if main is not None else None
    # `_binding` is what dbutils.bind_run set: Kiln's own contract with the notebook runner.
    binding = getattr(dbutils, "_binding", None)
    out: dict[str, str] = {}
    path = getattr(binding, "notebook_path", None)
    if isinstance(path, str) and path.startswith("/"):
        out["notebook_path"] = path
    run_id = getattr(binding, "run_id", None)
    if run_id is not None and re.fullmatch(r"[A-Za-z0-9_-]{1,64}", str(run_id)):
        out["run_id"] = str(run_id)
    return out


class ControlPlane:
    """JSON calls to the control plane as the context's user (read from the environment)."""

    @property
    def enabled(self) -> bool:
        """Whether there is a control plane to report to."""
        return bool(os.environ.get("DATABRICKS_HOST") and os.environ.get("DATABRICKS_TOKEN"))

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """One request to `TABLES + path`; ValueError with the server's error if it fails."""
        import httpx

        host = os.environ["DATABRICKS_HOST"].rstrip("/")
        headers = {"Authorization": f"Bearer {os.environ['DATABRICKS_TOKEN']}"}
        try:
            if method == "GET":
                response = httpx.get(
                    host + TABLES + path, params=body, headers=headers, timeout=TIMEOUT_S
                )
            else:
                response = httpx.post(
                    host + TABLES + path, json=body or {}, headers=headers, timeout=TIMEOUT_S
                )
        except httpx.HTTPError as e:
            raise ValueError(f"Cannot reach the feature store at {host}: {e}") from e
        try:
            answer: dict[str, Any] = response.json() if response.content else {}
        except ValueError:
            answer = {"message": response.text}
        if response.status_code >= 400:
            code = answer.get("error_code", response.status_code)
            raise ValueError(f"{code}: {answer.get('message', response.text)}")
        return answer

    def report(self, path: str, body: dict[str, Any]) -> dict[str, Any] | None:
        """POST lineage to the control plane (with the run context); None when there is none."""
        if not self.enabled:
            return None
        return self.call("POST", path, {**body, **run_context()})
