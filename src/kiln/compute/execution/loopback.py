"""A small keep-alive HTTP/1.1 client for the drivers' control endpoints on loopback.

A command's round trip through the API is two requests to the driver, and httpx's async client
spends ~3-5 ms of CPU on each (measured here: ten times a request over raw asyncio streams),
more than the rest of the round trip together. The control endpoint is Kiln's own (always
Content-Length, JSON), so this client speaks just that: one request at a time per connection,
idle connections kept per address, and a request retried once on a fresh connection when a
kept one turns out to be closed before any answer arrived.
"""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlencode, urlsplit

__all__ = ["LoopbackError", "LoopbackHttp"]

_MAX_HEAD = 64 * 1024


class LoopbackError(Exception):
    """The endpoint could not be reached, or broke off its answer."""


class _Stale(Exception):
    """A kept connection closed before answering: safe to send again on a new one."""


Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class LoopbackHttp:
    """Requests to `http://host:port` endpoints over pooled connections."""

    def __init__(self, max_idle_per_address: int = 16) -> None:
        self._idle: dict[tuple[str, int], list[Connection]] = {}
        self._max_idle = max_idle_per_address

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str],
        body: bytes | None = None,
        query: dict[str, object] | None = None,
        limit_seconds: float = 30.0,
    ) -> tuple[int, bytes]:
        """(status, body) of one request, answered within `limit_seconds`."""
        parts = urlsplit(url)
        address = (parts.hostname or "127.0.0.1", parts.port or 80)
        target = parts.path or "/"
        if query:
            target += "?" + urlencode({k: v for k, v in query.items() if v is not None})
        head = [f"{method} {target} HTTP/1.1", f"Host: {address[0]}:{address[1]}"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        payload = body or b""
        if payload or method != "GET":
            head += ["Content-Type: application/json", f"Content-Length: {len(payload)}"]
        message = ("\r\n".join(head) + "\r\n\r\n").encode() + payload
        try:
            async with asyncio.timeout(limit_seconds):
                # Kept connections that were closed meanwhile are dropped one by one; a new
                # connection never counts as stale, so this ends.
                while True:
                    connection, reused = await self._connection(address)
                    try:
                        return await self._exchange(address, connection, message, reused)
                    except _Stale:
                        continue
        except TimeoutError as exc:
            raise LoopbackError(f"no answer within {limit_seconds:.0f}s") from exc
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
            raise LoopbackError(repr(exc)) from exc

    async def _connection(self, address: tuple[str, int]) -> tuple[Connection, bool]:
        idle = self._idle.get(address)
        while idle:
            reader, writer = idle.pop()
            if not writer.is_closing() and not reader.at_eof():
                return (reader, writer), True
            writer.close()
        reader, writer = await asyncio.open_connection(*address, limit=_MAX_HEAD)
        return (reader, writer), False

    async def _exchange(
        self, address: tuple[str, int], connection: Connection, message: bytes, reused: bool
    ) -> tuple[int, bytes]:
        reader, writer = connection
        try:
            writer.write(message)
            await writer.drain()
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError as exc:
                if reused and not exc.partial:
                    raise _Stale from exc
                raise
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split(" ", 2)[1])
            fields = {
                k.strip().lower(): v.strip()
                for k, _, v in (line.partition(":") for line in lines[1:] if line)
            }
            length = fields.get("content-length")
            data = await (reader.readexactly(int(length)) if length else reader.read())
        except BaseException:
            writer.close()
            raise
        if length is None or fields.get("connection", "").lower() == "close":
            writer.close()
        else:
            pool = self._idle.setdefault(address, [])
            if len(pool) < self._max_idle:
                pool.append(connection)
            else:
                writer.close()
        return status, data

    async def close(self) -> None:
        """Close every kept connection."""
        for pool in self._idle.values():
            for _, writer in pool:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
        self._idle.clear()
