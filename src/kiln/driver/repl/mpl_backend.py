"""A matplotlib backend for contexts (`MPLBACKEND=module://kiln.driver.repl.mpl_backend`).

It renders like Agg; `plt.show()` hands every open figure to the running command as an image,
as the inline backend of a notebook does (through `kiln.driver.repl.figures`).
"""

from __future__ import annotations

from typing import Any

from matplotlib.backend_bases import _Backend
from matplotlib.backends.backend_agg import _BackendAgg

from kiln.driver.repl import figures

__all__: list[str] = []


@_Backend.export
class _BackendKiln(_BackendAgg):
    @classmethod
    def show(cls, *args: Any, **kwargs: Any) -> None:
        figures.show()
