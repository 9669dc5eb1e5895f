"""Pure ASGI middleware: lenient framing, bounded bodies and token authentication.

Pure ASGI (not BaseHTTPMiddleware) so request bodies stream through untouched and an
oversized body is refused as it arrives, never buffered whole.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kiln.errors import RequestTooLarge
from kiln.identity import Principal
from kiln.identity.auth_cache import PrincipalCache
from kiln.identity.tokens import authenticate
from kiln.settings import LimitSettings
from kiln.store import Database

__all__ = ["PUBLIC_PATHS", "AuthMiddleware", "FramingMiddleware"]

PUBLIC_PATHS = frozenset({"/health", "/.well-known/databricks-config"})

# Requests whose body is a file stream, allowed up to the upload limit instead of the JSON one.
_STREAMING_UPLOADS: tuple[tuple[str, str], ...] = (
    ("PUT", "/api/2.0/fs/files/"),
    ("POST", "/api/2.0/fs/files/"),
    ("POST", "/api/2.0/dbfs/put"),
)
# The legacy databricks CLI sends `text/json`; curl sends form-urlencoded by default.
_JSON_ALIASES = (b"text/json", b"text/plain", b"application/x-www-form-urlencoded")


async def _send_error(send: Send, status: int, code: str, message: str) -> None:
    body = json.dumps({"error_code": code, "message": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class FramingMiddleware:
    """Treats any non-multipart, non-binary body as JSON and caps body sizes."""

    def __init__(self, app: ASGIApp, limits: LimitSettings) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers: list[tuple[bytes, bytes]] = list(scope["headers"])
        content_type = b""
        length: int | None = None
        for name, value in headers:
            if name == b"content-type":
                content_type = value.split(b";", 1)[0].strip().lower()
            elif name == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    await _send_error(send, 400, "MALFORMED_REQUEST", "Bad Content-Length")
                    return
        method, path = scope["method"], scope["path"]
        streaming = any(method == m and path.startswith(p) for m, p in _STREAMING_UPLOADS)
        limit = self.limits.upload_body if streaming else self.limits.json_body
        if length is not None and length > limit:
            await _send_error(
                send,
                413,
                RequestTooLarge.error_code,
                f"Request body of {length} bytes exceeds the limit of {limit} bytes.",
            )
            return
        if not streaming and (not content_type or content_type in _JSON_ALIASES):
            headers = [(n, v) for n, v in headers if n != b"content-type"]
            headers.append((b"content-type", b"application/json"))
            scope = dict(scope, headers=headers)
        await _run_bounded(self.app, scope, receive, send, limit)


async def _run_bounded(
    app: ASGIApp, scope: Scope, receive: Receive, send: Send, limit: int
) -> None:
    """Run `app`, refusing with 413 as soon as the streamed body passes `limit`.

    Whatever the app does once the limit is hit (FastAPI turns body-read errors into a 400,
    an unhandled error would become a 500), the client gets the one 413.
    """
    seen = 0
    too_large = False
    refused = False

    async def bounded_receive() -> Message:
        nonlocal seen, too_large
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                too_large = True
                raise RequestTooLarge(f"Request body exceeds the limit of {limit} bytes.")
        return message

    async def refuse() -> None:
        nonlocal refused
        if not refused:
            refused = True
            await _send_error(
                send,
                413,
                RequestTooLarge.error_code,
                f"Request body exceeds the limit of {limit} bytes.",
            )

    async def guarded_send(message: Message) -> None:
        if too_large:
            await refuse()
            return
        await send(message)

    try:
        await app(scope, bounded_receive, guarded_send)
    except Exception:
        if not too_large:
            raise
        await refuse()


class AuthMiddleware:
    """Resolves `Authorization: Bearer <token>` to a Principal; 401 for anything else."""

    def __init__(
        self,
        app: ASGIApp,
        db: Callable[[], Database],
        cache: Callable[[], PrincipalCache],
        public: Callable[[str, str], bool] = lambda method, path: False,
    ) -> None:
        self.app = app
        self.db = db
        self.cache = cache
        # The web app's own page and files (kiln.server.webui.is_public): the sign-in is in it.
        self.public = public

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] == "OPTIONS":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path in PUBLIC_PATHS or self.public(scope["method"], path):
            await self.app(scope, receive, send)
            return
        token = _bearer(scope)
        if token is None and _proxy_sign_in(scope):
            # The driver proxy checks a Spark UI grant or cookie itself (ui_proxy_grant).
            await self.app(scope, receive, send)
            return
        principal: Principal | None = None
        if token is not None:
            principal = await self._resolve(token)
        if principal is None:
            await _send_error(
                send,
                401,
                "UNAUTHENTICATED",
                "Missing or invalid access token."
                if token is None
                else "Invalid access token (unknown, revoked or expired).",
            )
            return
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)

    async def _resolve(self, token: str) -> Principal | None:
        cache = self.cache()
        principal = cache.get(token)
        if principal is not None:
            return principal
        generation = cache.generation
        async with self.db().session() as session:
            found = await authenticate(session, token)
        if found is None:
            return None
        principal, expires_at = found
        cache.put(token, principal, expires_at, generation)
        return principal


def _proxy_sign_in(scope: Scope) -> bool:
    """A Spark UI request carrying a grant or the cookie a grant left (a browser tab)."""
    if not scope["path"].startswith("/driver-proxy/o/"):
        return False
    if b"kiln_grant=" in scope.get("query_string", b""):
        return True
    return any(n == b"cookie" and b"kiln_proxy=" in v for n, v in scope["headers"])


def _bearer(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = bytes(value).decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
            return None
    return None
