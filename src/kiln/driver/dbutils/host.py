"""What dbutils needs from the execution context it lives in (provided by the REPL).

The REPL of each execution context builds one `ContextHost` and hands it to `attach`; nothing
in dbutils reaches the control plane except through `api_url` with `token` (acting as the
context's user), so the code here never imports the control plane.
"""

from __future__ import annotations

from typing import Any, Protocol

__all__ = ["ContextHost"]


class ContextHost(Protocol):
    """The REPL side of one execution context, as dbutils sees it."""

    cluster_id: str
    context_id: str
    user_name: str
    # The control plane's base URL as the driver reaches it, e.g. `http://127.0.0.1:8080`.
    api_url: str
    # A token that acts as the context's user; never shown in outputs.
    token: str
    # The DBFS store's local directory when it is one on this machine, else None.
    dbfs_root: str | None

    def emit(self, output: dict[str, Any]) -> None:
        """Add an nbformat output dict to the running command's outputs."""
        ...

    def request_restart(self) -> None:
        """Restart this context's Python once the running command ends."""
        ...
