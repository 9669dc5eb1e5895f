"""Where the REPL's matplotlib backend finds the running context (set once per process).

Kept apart from the backend module so that setting it does not import matplotlib: a context
that never plots never pays for it.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["set_show", "show"]

_show: Callable[[], None] | None = None


def set_show(callback: Callable[[], None]) -> None:
    """Register what `plt.show()` does: emit every open figure to the running command."""
    global _show
    _show = callback


def show() -> None:
    """Emit every open figure (nothing before a context is assigned)."""
    if _show is not None:
        _show()
