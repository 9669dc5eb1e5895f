"""The link between the driver runtime and one REPL process: JSON messages over a socket pair.

Each message is a 4-byte big-endian length and that many bytes of UTF-8 JSON. The driver
creates the pair and hands one end to the REPL as an inherited file descriptor, so nothing
listens on a port and the link dies with either process (the other side reads end-of-file).
"""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import threading
from typing import Any

__all__ = ["Channel", "ChannelClosed"]

_HEADER = struct.Struct(">I")
# Outputs are capped well below this (20 MB of rich output per command); a larger frame is a bug.
MAX_FRAME = 256 * 1024 * 1024


class ChannelClosed(Exception):
    """The other side is gone (end-of-file or a broken socket)."""


class Channel:
    """Sends and receives whole messages; sends are serialized, receives belong to one thread."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._send_lock = threading.Lock()

    def send(self, message: dict[str, Any]) -> None:
        """Send one message (raises ChannelClosed if the other side is gone)."""
        data = json.dumps(message, separators=(",", ":")).encode()
        try:
            with self._send_lock:
                self.sock.sendall(_HEADER.pack(len(data)) + data)
        except OSError as exc:
            raise ChannelClosed(str(exc)) from exc

    def receive(self) -> dict[str, Any]:
        """Block for the next message."""
        (size,) = _HEADER.unpack(self._read(_HEADER.size))
        if size > MAX_FRAME:
            raise ChannelClosed(f"a frame of {size} bytes is larger than allowed")
        message = json.loads(self._read(size))
        if not isinstance(message, dict):
            raise ChannelClosed("a message must be a JSON object")
        return message

    def _read(self, size: int) -> bytes:
        parts: list[bytes] = []
        left = size
        while left:
            try:
                chunk = self.sock.recv(min(left, 1 << 20))
            except OSError as exc:
                raise ChannelClosed(str(exc)) from exc
            if not chunk:
                raise ChannelClosed("end of file")
            parts.append(chunk)
            left -= len(chunk)
        return b"".join(parts)

    def close(self) -> None:
        """Close our end."""
        with contextlib.suppress(OSError):
            self.sock.close()
