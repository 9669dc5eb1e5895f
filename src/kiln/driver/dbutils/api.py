"""A small client of the control plane's public REST API, used by dbutils inside a context.

It speaks only the documented Databricks paths (DBFS, Secrets, Workspace) plus Kiln's notebook
runs, with the context's token; httpx is imported on first use so a context starts fast.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from kiln.driver.dbutils.errors import ApiError, ExecutionError
from kiln.driver.dbutils.host import ContextHost

if TYPE_CHECKING:
    import httpx

__all__ = ["ApiClient"]

DEFAULT_TIMEOUT_SECONDS = 120.0


class ApiClient:
    """JSON requests to the control plane as the context's user (one keep-alive connection).

    The control plane's address is read from the host at each request: after a restart of
    the control plane on another port, the REPL updates the host and the next call follows.
    """

    def __init__(self, host: ContextHost, timeout: float = DEFAULT_TIMEOUT_SECONDS) -> None:
        self._host = host
        self._timeout = timeout
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()

    @property
    def base_url(self) -> str:
        """The control plane's base URL now."""
        return self._host.api_url.rstrip("/")

    def __repr__(self) -> str:
        return f"ApiClient({self.base_url!r})"  # never the token

    def _http(self) -> httpx.Client:
        with self._lock:
            base = self.base_url
            if self._client is not None and str(self._client.base_url).rstrip("/") != base:
                self._client.close()
                self._client = None
            if self._client is None:
                import httpx

                self._client = httpx.Client(
                    base_url=base,
                    headers={"Authorization": f"Bearer {self._host.token}"},
                    timeout=self._timeout,
                )
            return self._client

    def get(self, path: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """GET `path` with query parameters; the JSON answer."""
        return self._send("GET", path, params=params)

    def post(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """POST a JSON body to `path`; the JSON answer."""
        return self._send("POST", path, json=body or {})

    def _send(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        import httpx

        try:
            response = self._http().request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ExecutionError(
                f"Cannot reach the control plane at {self.base_url}: {exc}"
            ) from exc
        if response.status_code >= 400:
            raise _error(response)
        if not response.content:
            return {}
        data = response.json()
        return data if isinstance(data, dict) else {}

    def close(self) -> None:
        """Close the connection (a new one opens on the next request)."""
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None


def _error(response: httpx.Response) -> ApiError:
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    code = str(body.get("error_code") or f"HTTP_{response.status_code}")
    message = str(body.get("message") or response.text[:500] or response.reason_phrase)
    return ApiError(response.status_code, code, message)
