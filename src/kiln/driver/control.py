"""The driver's control endpoint: a small JSON-over-HTTP server on loopback.

Every request must carry `Authorization: Bearer <control secret>` (compared in constant time).
Handlers are registered by (method, path), so later parts of the runtime (execution contexts)
add their routes without touching the server.
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["ControlServer", "Handler", "HttpError"]

log = logging.getLogger("kiln.driver")

# A handler gets the JSON body and the query string and returns a JSON-able dict.
Handler = Callable[[dict[str, Any], dict[str, str]], dict[str, Any]]

MAX_BODY = 16 * 1024 * 1024


class HttpError(Exception):
    """A handler's refusal, rendered as `{"error_code", "message"}`."""

    def __init__(self, status: int, error_code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.message = message


class ControlServer:
    """Routes plus a threading HTTP server bound to one loopback address."""

    def __init__(self, host: str, port: int, secret: str) -> None:
        self.routes: dict[tuple[str, str], Handler] = {}
        self._secret = secret.encode()
        server = self

        class _RequestHandler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body leave in separate writes; with Nagle's algorithm the body would
            # wait for the client's delayed ACK (~40 ms on every keep-alive request).
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                return  # the control plane polls often; its requests are not worth a log line

            def _reply(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self, method: str) -> None:
                url = urlsplit(self.path)
                try:
                    length = int(self.headers.get("Content-Length") or 0)
                    if length > MAX_BODY:
                        raise HttpError(413, "MAX_REQUEST_SIZE_EXCEEDED", "Body too large.")
                    raw = self.rfile.read(length) if length else b""
                    if not server.authorized(self.headers.get("Authorization")):
                        raise HttpError(401, "UNAUTHENTICATED", "Missing or invalid secret.")
                    handler = server.routes.get((method, url.path))
                    if handler is None:
                        raise HttpError(404, "ENDPOINT_NOT_FOUND", f"No route {method} {url.path}")
                    body = json.loads(raw) if raw else {}
                    if not isinstance(body, dict):
                        raise HttpError(400, "MALFORMED_REQUEST", "The body must be an object.")
                    query = {k: v[-1] for k, v in parse_qs(url.query).items()}
                    self._reply(200, handler(body, query))
                except HttpError as exc:
                    self._reply(exc.status, {"error_code": exc.error_code, "message": exc.message})
                except ValueError as exc:
                    self._reply(400, {"error_code": "MALFORMED_REQUEST", "message": str(exc)})
                except Exception as exc:
                    log.exception("control request %s %s failed", method, url.path)
                    self._reply(500, {"error_code": "INTERNAL_ERROR", "message": str(exc)})

            def do_GET(self) -> None:
                self._handle("GET")

            def do_POST(self) -> None:
                self._handle("POST")

        self.httpd = ThreadingHTTPServer((host, port), _RequestHandler)
        self.httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The port the server listens on."""
        return int(self.httpd.server_address[1])

    def authorized(self, header: str | None) -> bool:
        """Whether an Authorization header carries the control secret."""
        if not header or not header.startswith("Bearer "):
            return False
        return hmac.compare_digest(header[len("Bearer ") :].strip().encode(), self._secret)

    def route(self, method: str, path: str, handler: Handler) -> None:
        """Serve `handler` at (method, path)."""
        self.routes[(method, path)] = handler

    def start(self) -> None:
        """Serve in a background thread."""
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, name="kiln-control", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving."""
        self.httpd.shutdown()
        self.httpd.server_close()
