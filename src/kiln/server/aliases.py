"""Path aliases: one route serves every API version Databricks exposes it under.

Databricks serves many APIs under several prefixes (`/api/2.0/clusters` and `/api/2.1/clusters`,
SCIM under `/api/2.0/preview/scim/v2` and `/api/2.0/scim/v2`, jobs under 2.0, 2.1 and 2.2).
Registering a FastAPI route per prefix doubles the route-building work at import time — the
largest part of the server's cold start — so each route is registered once, under its
canonical prefix, and an alias prefix is rewritten to it before routing. The OpenAPI document
lists the aliases as well, so clients reading it see every path that answers.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["AliasMiddleware", "add_aliases_to_openapi"]


class AliasMiddleware:
    """Rewrites an alias prefix to its canonical one, so one route answers both."""

    def __init__(self, app: ASGIApp, aliases: Mapping[str, str]) -> None:
        self.app = app
        self.aliases = dict(aliases)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.aliases:
            path: str = scope["path"]
            for alias, canonical in self.aliases.items():
                if path == alias or path.startswith(alias + "/"):
                    scope = dict(scope, path=canonical + path[len(alias) :])
                    raw: bytes | None = scope.get("raw_path")
                    if raw is not None and raw.startswith(alias.encode()):
                        # Keep the client's own encoding of the rest of the path.
                        scope["raw_path"] = canonical.encode() + raw[len(alias) :]
                    break
        await self.app(scope, receive, send)


def add_aliases_to_openapi(document: dict[str, Any], aliases: Mapping[str, str]) -> None:
    """Copy every canonical path of `document` under each of its alias prefixes."""
    paths: dict[str, Any] = document.get("paths", {})
    for alias, canonical in aliases.items():
        for path, item in list(paths.items()):
            if path == canonical or path.startswith(canonical + "/"):
                aliased = alias + path[len(canonical) :]
                item = copy.deepcopy(item)
                for operation in item.values():
                    if isinstance(operation, dict) and "operationId" in operation:
                        operation["operationId"] += "_" + _slug(alias)
                paths.setdefault(aliased, item)


def _slug(prefix: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in prefix.strip("/"))
