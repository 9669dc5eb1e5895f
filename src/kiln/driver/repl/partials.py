"""A running command's outputs so far, sent to the driver as they are produced.

The driver answers a command's status with them while it runs, so a notebook page shows a
cell's `print` within milliseconds instead of at the cell's end. Sends are throttled (one per
`INTERVAL`, the last change always sent) and skipped once the outputs are large (images,
megabytes of text): the final `done` carries everything anyway. Outputs are redacted before
they leave the process, as the final ones are.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

from kiln.driver.channel import ChannelClosed

__all__ = ["INTERVAL", "MAX_PARTIAL_BYTES", "PartialOutputs"]

INTERVAL = 0.02
MAX_PARTIAL_BYTES = 1024 * 1024

# What the executor gives: the outputs so far (copied and redacted), or None when too large.
Snapshot = Callable[[int], list[dict[str, Any]] | None]


class PartialOutputs:
    """Publishes `{"event": "partial", "id", "outputs"}` while a command runs."""

    def __init__(self, send: Callable[[dict[str, Any]], None], snapshot: Snapshot) -> None:
        self._send = send
        self._snapshot = snapshot
        self._lock = threading.Lock()
        self._command: str | None = None
        self._last = 0.0
        self._timer: threading.Timer | None = None

    def begin(self, command_id: str) -> None:
        """A command starts: its changes are published from now on."""
        with self._lock:
            self._command = command_id
            self._last = 0.0

    def end(self) -> None:
        """The command ended (its `done` carries the outputs): publish no more."""
        with self._lock:
            self._command = None
            timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()

    def changed(self) -> None:
        """The running command's outputs changed (called on the thread that wrote them)."""
        with self._lock:
            if self._command is None or self._timer is not None:
                return
            wait = self._last + INTERVAL - time.monotonic()
            if wait > 0:
                self._timer = threading.Timer(wait, self._flush)
                self._timer.daemon = True
                self._timer.start()
                return
        self._flush()

    def _flush(self) -> None:
        with self._lock:
            self._timer = None
            command = self._command
            if command is None:
                return
            self._last = time.monotonic()
        outputs = self._snapshot(MAX_PARTIAL_BYTES)
        if outputs is None:
            return
        with contextlib.suppress(ChannelClosed):
            self._send({"event": "partial", "id": command, "outputs": outputs})
