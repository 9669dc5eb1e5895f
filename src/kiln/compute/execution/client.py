"""The control plane's client of the drivers' execution routes.

One pool of keep-alive connections serves every cluster (`loopback.LoopbackHttp`): a command's
round trip through the API is two loopback requests to the driver, so neither a new connection
nor a general-purpose client's per-request cost is affordable. A driver's refusal comes back
as the matching `KilnError`.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from kiln.compute.driver_client import read_secrets
from kiln.compute.execution.loopback import LoopbackError, LoopbackHttp
from kiln.errors import (
    InternalError,
    InvalidParameterValue,
    InvalidState,
    KilnError,
    PermissionDenied,
    RequestLimitExceeded,
    ResourceAlreadyExists,
    ResourceDoesNotExist,
)

__all__ = ["DriverRoute", "ExecutionClient"]

_ERRORS: dict[str, type[KilnError]] = {
    "RESOURCE_DOES_NOT_EXIST": ResourceDoesNotExist,
    "PERMISSION_DENIED": PermissionDenied,
    "INVALID_STATE": InvalidState,
    "INVALID_PARAMETER_VALUE": InvalidParameterValue,
    "RESOURCE_ALREADY_EXISTS": ResourceAlreadyExists,
    "REQUEST_LIMIT_EXCEEDED": RequestLimitExceeded,
}


@dataclass(frozen=True, slots=True)
class DriverRoute:
    """Where one running cluster's driver answers."""

    cluster_id: str
    control_url: str
    secret_path: str
    # The Spark application: a restarted cluster has new secrets behind the same path.
    app_id: str


class ExecutionClient:
    """Calls drivers' execution routes over one pooled HTTP client."""

    def __init__(self) -> None:
        self._http = LoopbackHttp()
        self._secrets: dict[tuple[str, str], str] = {}

    async def _secret(self, route: DriverRoute, fresh: bool = False) -> str:
        key = (route.secret_path, route.app_id)
        if fresh or key not in self._secrets:
            keys = await asyncio.to_thread(read_secrets, route.secret_path)
            self._secrets[key] = keys["control"]
        return self._secrets[key]

    async def call(
        self,
        route: DriverRoute,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None = None,
        query: dict[str, Any] | None = None,
        wait: float = 0.0,
    ) -> dict[str, Any]:
        """One request to the driver; its JSON answer, or the KilnError it stands for."""
        payload = json.dumps(body).encode() if body is not None else None
        for attempt in (0, 1):
            secret = await self._secret(route, fresh=attempt > 0)
            try:
                status, raw = await self._http.request(
                    method,
                    route.control_url + path,
                    headers={"Authorization": f"Bearer {secret}"},
                    body=payload,
                    query=query,
                    limit_seconds=30.0 + wait,
                )
            except LoopbackError as exc:
                raise InternalError(
                    f"The driver of cluster {route.cluster_id} did not answer: {exc}"
                ) from exc
            if status == 401 and attempt == 0:
                continue  # the cluster restarted with new secrets
            break
        try:
            data = json.loads(raw) if raw else {}
        except ValueError:
            data = {}
        if status == 200 and isinstance(data, dict):
            return data
        fields = data if isinstance(data, dict) else {}
        code = str(fields.get("error_code") or "")
        message = str(fields.get("message") or "")
        error = _ERRORS.get(code, InternalError)
        raise error(message or f"The driver of cluster {route.cluster_id} answered {status}.")

    async def close(self) -> None:
        """Close the pooled connections."""
        await self._http.close()
