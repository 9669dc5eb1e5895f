"""A route serving the built web app: hashed assets, index.html for client routes."""

from __future__ import annotations

import html
from pathlib import Path

from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.routing import BaseRoute, Match
from starlette.types import Receive, Scope, Send

__all__ = ["PUBLIC_PREFIXES", "PUBLIC_ROOT", "WebUiRoute", "dist_dir", "is_public"]

PUBLIC_ROOT = "/"
# The app's client routes and its files; nothing under /api is ever one of them.
CLIENT_ROUTES = ("login", "workspace", "notebook", "compute", "jobs", "data", "ml", "settings")
PUBLIC_PREFIXES: tuple[str, ...] = (
    "/assets/",
    "/favicon.svg",
    *(f"/{name}" for name in CLIENT_ROUTES),
)
ASSET_CACHE = "public, max-age=31536000, immutable"
# The app's own scripts only; notebook HTML outputs run in sandboxed frames.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data: blob:; frame-src 'self' data: blob:; object-src 'none'; "
        "base-uri 'self'; frame-ancestors 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
NOT_BUILT = """<!doctype html><html><head><meta charset="utf-8"><title>Kiln</title></head>
<body style="font-family:sans-serif;margin:3em"><h1>Kiln</h1>
<p>The web UI was not built. Run <code>scripts/bootstrap.sh</code> (it needs Node.js and npm)
or <code>npm ci &amp;&amp; npm run build</code> in <code>web/</code>.</p>
<p>The REST API works without it: {url}</p></body></html>"""


def dist_dir() -> Path:
    """Where `npm run build` writes the app."""
    return Path(__file__).resolve().parent / "dist"


def is_public(method: str, path: str) -> bool:
    """Whether a request is for the web app itself (its page, files and client routes), which
    anyone may load: the sign-in happens inside it. Only GET and HEAD; never an API path."""
    return method in ("GET", "HEAD") and _owned(path)


def _owned(path: str) -> bool:
    if path == PUBLIC_ROOT:
        return True
    return any(
        path == p.rstrip("/") or path.startswith(p if p.endswith("/") else p + "/")
        for p in PUBLIC_PREFIXES
    )


class WebUiRoute(BaseRoute):
    """Answers GET/HEAD for the app's paths; every other path is left to the API's routes."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = (root or dist_dir()).resolve()

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        http = scope["type"] == "http" and scope["method"] in ("GET", "HEAD")
        if http and _owned(scope["path"]):
            return Match.FULL, {}
        return Match.NONE, {}

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = self.response(scope["path"])
        await response(scope, receive, send)

    def response(self, path: str) -> Response:
        """The file for `path`: an asset, or index.html for a client route."""
        index = self.root / "index.html"
        if not index.is_file():
            return HTMLResponse(
                NOT_BUILT.format(url=html.escape("/api/2.0/...")),
                headers={"Cache-Control": "no-store"},
            )
        if path.startswith("/assets/") or path == "/favicon.svg":
            target = (self.root / path.lstrip("/")).resolve()
            # Confined to the build: `..` never reaches outside it.
            if not target.is_relative_to(self.root) or not target.is_file():
                return Response("Not found", status_code=404, media_type="text/plain")
            cache = ASSET_CACHE if path.startswith("/assets/") else "no-cache"
            return FileResponse(target, headers={"Cache-Control": cache, **SECURITY_HEADERS})
        return FileResponse(
            index,
            media_type="text/html",
            headers={"Cache-Control": "no-cache", **SECURITY_HEADERS},
        )
