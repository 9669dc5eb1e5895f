"""`dbutils.library`: restarting the context's Python (after installing packages)."""

from __future__ import annotations

from collections.abc import Callable

from kiln.driver.dbutils.binding import RESTART_MIME, RunBinding, marker
from kiln.driver.dbutils.help import Helpful
from kiln.driver.dbutils.host import ContextHost

__all__ = ["LibraryUtils"]


class LibraryUtils(Helpful):
    """Utilities for session-isolated libraries."""

    _TITLE = "dbutils.library"
    _INTRO = "utilities for the context's Python (install with %pip, then restart)."
    _HELP = ("restartPython",)

    def __init__(self, host: ContextHost, binding: Callable[[], RunBinding | None]) -> None:
        self._host = host
        self._binding = binding

    def restartPython(self) -> None:
        """Restarts this context's Python once the current command ends (variables are lost)."""
        if self._binding() is not None:
            # The runner binds the run again in the fresh process before the next cell.
            self._host.emit(marker(RESTART_MIME, {}))
        self._host.request_restart()
