"""The control plane's side of a driver runtime's control endpoint (loopback HTTP, bearer
secret read from the cluster's 0600 secrets file)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kiln.driver.protocol import PATH_HEALTH, PATH_SHUTDOWN, PATH_SMOKE_JOB, PATH_STATUS

__all__ = ["DriverClient", "DriverUnavailable", "read_secrets"]


class DriverUnavailable(Exception):
    """The driver did not answer (or answered with an error)."""


def read_secrets(path: str | Path) -> dict[str, str]:
    """A cluster's secrets file: {"spark": ..., "control": ...}."""
    data = json.loads(Path(path).read_text())
    if not isinstance(data, dict):
        raise ValueError(f"{path} holds no secrets")
    return {str(k): str(v) for k, v in data.items()}


class DriverClient:
    """Calls one driver's control endpoint."""

    def __init__(self, url: str, secret: str, *, timeout: float = 5.0) -> None:
        self.url = url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {secret}"}
        self.timeout = timeout

    @classmethod
    def from_files(cls, url: str, secret_path: str, *, timeout: float = 5.0) -> DriverClient:
        """A client for the driver at `url`, its secret read from the cluster's secrets file."""
        return cls(url, read_secrets(secret_path)["control"], timeout=timeout)

    async def _call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        wait: float | None = None,
    ) -> dict[str, Any]:
        # Imported here: httpx pulls in rich and pygments (~0.3 s), off the server's start path.
        import httpx

        try:
            async with httpx.AsyncClient(timeout=wait or self.timeout) as client:
                response = await client.request(
                    method, self.url + path, json=body, headers=self._headers
                )
        except httpx.HTTPError as exc:
            raise DriverUnavailable(f"{method} {path}: {exc!r}") from exc
        if response.status_code != 200:
            raise DriverUnavailable(f"{method} {path}: {response.status_code} {response.text}")
        data = response.json()
        if not isinstance(data, dict):
            raise DriverUnavailable(f"{method} {path}: unexpected answer")
        return data

    async def health(self) -> dict[str, Any]:
        """GET /health."""
        return await self._call("GET", PATH_HEALTH)

    async def status(self) -> dict[str, Any]:
        """GET /status."""
        return await self._call("GET", PATH_STATUS, wait=max(self.timeout, 10.0))

    async def smoke_job(self, tasks: int, task_ms: int, wait: float = 600.0) -> dict[str, Any]:
        """POST /smoke-job and wait for its answer."""
        return await self._call("POST", PATH_SMOKE_JOB, {"tasks": tasks, "task_ms": task_ms}, wait)

    async def shutdown(self) -> None:
        """POST /shutdown."""
        await self._call("POST", PATH_SHUTDOWN, {})
