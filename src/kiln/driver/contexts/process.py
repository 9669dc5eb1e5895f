"""The driver's handle on one REPL process: start it, talk to it, interrupt and stop it.

A REPL runs in its own session (its process group holds whatever the user's code starts), on
the cluster's Python, with its output in a log file; it reaches the driver only through the
socket pair created here. A reader thread turns its messages into calls of `on_event`; the
end of the link (the process died, or exited for a restart) is the event `{"event": "exit"}`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kiln.driver.channel import Channel, ChannelClosed

__all__ = ["ReplProcess", "ReplUnavailable"]

log = logging.getLogger("kiln.driver.contexts")

EventHandler = Callable[[dict[str, Any]], None]


class ReplUnavailable(Exception):
    """The REPL did not start, attach or answer."""


class ReplProcess:
    """One REPL process."""

    def __init__(
        self,
        python: str,
        env: dict[str, str],
        cwd: Path,
        log_path: Path,
        init: dict[str, Any],
    ) -> None:
        self.mode = str(init["mode"])
        parent, child = socket.socketpair()
        log_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with open(log_path, "ab") as out:
                self.proc = subprocess.Popen(
                    [python, "-m", "kiln.driver.repl", str(child.fileno())],
                    pass_fds=(child.fileno(),),
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=env,
                    cwd=cwd,
                    start_new_session=True,
                )
        except BaseException:
            parent.close()
            raise
        finally:
            child.close()
        self.pid = self.proc.pid
        self.channel = Channel(parent)
        self.session_id = ""
        self.exit_code: int | None = None
        self.ready = threading.Event()
        self.assigned = threading.Event()
        self.exited = threading.Event()
        self._handler: EventHandler | None = None
        self._lock = threading.Lock()
        self._reader = threading.Thread(
            target=self._read, name=f"kiln-repl-{self.pid}", daemon=True
        )
        self._reader.start()
        self.send({"op": "init", **init})

    def send(self, message: dict[str, Any]) -> None:
        """Send a message (raises ReplUnavailable when the process is gone)."""
        try:
            self.channel.send(message)
        except ChannelClosed as exc:
            raise ReplUnavailable(f"the Python process (pid {self.pid}) is gone") from exc

    def on_event(self, handler: EventHandler | None) -> None:
        """Route `done` and `exit` events to `handler` (the context that owns this process)."""
        with self._lock:
            self._handler = handler
            exited = self.exited.is_set()
        if exited and handler is not None:
            handler({"event": "exit", "code": self.exit_code})

    def _dispatch(self, message: dict[str, Any]) -> None:
        with self._lock:
            handler = self._handler
        if handler is not None:
            handler(message)

    def _read(self) -> None:
        try:
            while True:
                message = self.channel.receive()
                event = message.get("event")
                if event == "ready":
                    self.session_id = str(message.get("session_id") or "")
                    self.ready.set()
                elif event == "assigned":
                    self.assigned.set()
                else:
                    self._dispatch(message)
        except ChannelClosed:
            pass
        except Exception:
            log.exception("reading from REPL %s failed", self.pid)
        try:
            self.exit_code = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()
            self.exit_code = self.proc.wait()
        self.channel.close()
        with self._lock:
            self.exited.set()
            handler = self._handler
        if handler is not None:
            handler({"event": "exit", "code": self.exit_code})

    def wait_ready(self, timeout: float) -> None:
        """Block until the process is attached to Spark (raises ReplUnavailable)."""
        self._wait(self.ready, timeout, "start")

    def assign(self, assignment: dict[str, Any], timeout: float) -> None:
        """Make the process one context and wait until it is."""
        self.send({"op": "assign", **assignment})
        self._wait(self.assigned, timeout, "take on its context")

    def _wait(self, event: threading.Event, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not event.wait(0.05):
            if self.exited.is_set():
                raise ReplUnavailable(
                    f"the Python process exited with code {self.exit_code} before it could {what}"
                )
            if time.monotonic() > deadline:
                raise ReplUnavailable(f"the Python process did not {what} within {timeout:.0f}s")

    def interrupt(self) -> None:
        """SIGINT: interrupt the running command (ignored between commands)."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGINT)

    def alive(self) -> bool:
        """Whether the process still runs."""
        return not self.exited.is_set() and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL the process and everything it started (its process group)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()

    def stop(self, grace: float = 2.0) -> None:
        """Ask the process to leave, then kill what is left of its group."""
        if self.alive():
            with contextlib.suppress(ReplUnavailable):
                self.send({"op": "shutdown"})
            self.exited.wait(grace)
        self.kill()
