"""`BackgroundService`: the one shape of every long-running loop of the compute subsystem.

A named service with `start()`/`stop()`, a `tick()` that does one pass (tests call it
directly), an `interval` between passes and `wake()` to pass at once. A failing pass is logged
and the loop goes on; only cancellation ends it. The cluster supervisor, autotermination and
the warm-pool service are all one of these.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod

__all__ = ["BackgroundService"]

log = logging.getLogger("kiln.compute")


class BackgroundService(ABC):
    """A named loop: `tick()` every `interval` seconds, or as soon as someone calls `wake()`."""

    name: str = "background-service"

    def __init__(self) -> None:
        self._wake = asyncio.Event()
        self._loop: asyncio.Task[None] | None = None

    @property
    @abstractmethod
    def interval(self) -> float:
        """Seconds between passes when nothing wakes the service."""

    @abstractmethod
    async def tick(self) -> object:
        """One pass."""

    @property
    def running(self) -> bool:
        """Whether the loop runs."""
        return self._loop is not None and not self._loop.done()

    async def start(self) -> None:
        """Run passes in the background until stopped."""
        if self._loop is None:
            self._loop = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        """Stop passing (a pass in flight is cancelled)."""
        if self._loop is not None:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop
            self._loop = None

    def wake(self) -> None:
        """Pass as soon as possible."""
        self._wake.set()

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)
            self._wake.clear()
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s: pass failed", self.name)
