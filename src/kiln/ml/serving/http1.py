"""A minimal HTTP/1.1 keep-alive client and server framing for Kiln's own scorer processes.

Only Kiln talks to its scorers, always with Content-Length bodies, so this covers exactly that:
one request per connection at a time, responses read by Content-Length. Against a
general-purpose client (httpx) it removes most of the per-request cost of the proxy hop.
"""

from __future__ import annotations

import asyncio
import contextlib

__all__ = ["Http1Pool", "read_request", "write_response"]

MAX_HEADER_LINES = 100
REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 411: "Length Required", 500: "Error"}


async def _read_headers(reader: asyncio.StreamReader) -> dict[str, str]:
    headers: dict[str, str] = {}
    for _ in range(MAX_HEADER_LINES):
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            return headers
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    raise ValueError("Too many header lines.")


async def read_request(
    reader: asyncio.StreamReader,
) -> tuple[str, str, dict[str, str], bytes] | None:
    """(method, path, headers, body) of the next request; None when the peer closed."""
    line = await reader.readline()
    if not line:
        return None
    parts = line.decode("latin-1").split(" ")
    if len(parts) != 3:
        raise ValueError("Malformed request line.")
    headers = await _read_headers(reader)
    length = int(headers.get("content-length", "0"))
    body = await reader.readexactly(length) if length else b""
    return parts[0], parts[1].split("?", 1)[0], headers, body


def write_response(
    writer: asyncio.StreamWriter, status: int, body: bytes, content_type: str
) -> None:
    """Queue one keep-alive response."""
    head = (
        f"HTTP/1.1 {status} {REASONS.get(status, 'Status')}\r\n"
        f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    writer.write(head.encode("latin-1") + body)


class Http1Pool:
    """Keep-alive connections to one scorer on 127.0.0.1."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        """POST a JSON body; (status, response body). Retries once on a stale connection."""
        for attempt in range(2):
            reused = bool(self._idle)
            if reused:
                reader, writer = self._idle.pop()
            else:
                reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            try:
                writer.write(
                    (
                        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
                    ).encode("latin-1")
                    + body
                )
                status_line = await reader.readline()
                if not status_line:
                    raise ConnectionResetError("The scorer closed the connection.")
                status = int(status_line.split(b" ", 2)[1])
                headers = await _read_headers(reader)
                response = await reader.readexactly(int(headers.get("content-length", "0")))
            except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
                self._discard(writer)
                if reused and attempt == 0:
                    continue
                raise
            self._idle.append((reader, writer))
            return status, response
        raise ConnectionError("unreachable")

    def _discard(self, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            writer.close()

    def close(self) -> None:
        """Close every idle connection."""
        while self._idle:
            self._discard(self._idle.pop()[1])
