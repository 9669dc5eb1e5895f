"""Lazy API areas: built on first use, answering only whole-segment prefixes."""

from __future__ import annotations

import sys

import httpx
from fastapi import FastAPI

from kiln.server.aliases import AliasMiddleware
from kiln.server.lazy_routes import Area, LazyArea

MODULE = "kiln.server.routers.tokens"


def test_owns_whole_segments_only() -> None:
    area = LazyArea(Area(MODULE, ("/api/2.0/token",)))
    assert area.owns("/api/2.0/token")
    assert area.owns("/api/2.0/token/list")
    assert not area.owns("/api/2.0/token-management/tokens")
    assert not area.owns("/api/2.0/tok")


async def test_router_is_built_on_first_request_only() -> None:
    sys.modules.pop(MODULE, None)
    area = LazyArea(Area(MODULE, ("/api/2.0/token",)))
    app = FastAPI()
    app.router.routes.append(area)
    assert not area.loaded and MODULE not in sys.modules
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        # Outside every area: the app's own 404, and still nothing built.
        assert (await client.get("/elsewhere")).status_code == 404
        assert not area.loaded
        # Under the prefix but no such route: the area's router answers 404 after loading.
        assert (await client.get("/api/2.0/token/nope")).status_code == 404
    assert area.loaded and MODULE in sys.modules


async def test_alias_prefix_is_rewritten_to_the_canonical_one() -> None:
    seen: list[tuple[str, bytes]] = []

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        seen.append((scope["path"], scope["raw_path"]))
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    wrapped = AliasMiddleware(app, {"/api/2.1/clusters": "/api/2.0/clusters"})
    transport = httpx.ASGITransport(app=wrapped)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        await client.get("/api/2.1/clusters/get%2Fx")
        await client.get("/api/2.1/clustersX/get")
    assert seen[0] == ("/api/2.0/clusters/get/x", b"/api/2.0/clusters/get%2Fx")
    assert seen[1][0] == "/api/2.1/clustersX/get"
