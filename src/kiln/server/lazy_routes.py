"""API areas whose routes are built on their first request instead of at server start.

FastAPI builds every route eagerly (signature analysis and a pydantic adapter per parameter,
about 3 ms a route on the CI machines), and importing an area's router also imports its
schemas and services. With every area eager, that work was most of the server's cold start
and grew with each API added. An `Area` names the path prefixes it answers and the module that
holds its `router`; the app holds one `LazyArea` route per area, which imports the module and
hands the request to its router the first time a request reaches the prefix. /openapi.json
loads every area first, so the document stays complete.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from fastapi import APIRouter
from starlette.routing import BaseRoute, Match
from starlette.types import Receive, Scope, Send

__all__ = ["Area", "LazyArea"]


@dataclass(frozen=True)
class Area:
    """One API area: the module whose `router` serves it and the path prefixes it owns."""

    module: str
    prefixes: tuple[str, ...]


class LazyArea(BaseRoute):
    """A route that claims an area's prefixes and builds the area's router on first use."""

    def __init__(self, area: Area) -> None:
        self.area = area
        self._router: APIRouter | None = None

    @property
    def router(self) -> APIRouter:
        """The area's router, imported and built on the first call."""
        if self._router is None:
            module = importlib.import_module(self.area.module)
            router = module.router
            if not isinstance(router, APIRouter):
                raise TypeError(f"{self.area.module}.router is not an APIRouter")
            self._router = router
        return self._router

    @property
    def loaded(self) -> bool:
        """Whether the area's router has been built yet."""
        return self._router is not None

    def owns(self, path: str) -> bool:
        """Whether `path` lies under one of the area's prefixes (whole segments only)."""
        return any(path == p or path.startswith(p + "/") for p in self.area.prefixes)

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] == "http" and self.owns(scope["path"]):
            return Match.FULL, {}
        return Match.NONE, {}

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The area's router matches the route itself: an unknown path or method under the
        # prefix gets the router's 404/405, rendered by the app's error handlers.
        await self.router(scope, receive, send)
