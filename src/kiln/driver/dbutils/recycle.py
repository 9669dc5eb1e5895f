"""A context's Python made fresh for its next notebook run.

Job runs reuse an idle context of the same user on the same cluster instead of starting a
Python per run (a start costs seconds; a for_each runs hundreds of notebooks). Before the next
run binds, the namespace goes back to what the context started with (`spark`, `dbutils`,
`display`...), and so do the environment variables, the working directory, the widgets and
the open matplotlib figures. Imported modules stay imported: that is the point.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Any

__all__ = ["Baseline"]


@dataclass(frozen=True, slots=True)
class Baseline:
    """What a context held when its first run was bound (kept by its `dbutils`)."""

    names: dict[str, Any]
    environ: dict[str, str]
    cwd: str

    @classmethod
    def record(cls, namespace: dict[str, Any]) -> Baseline:
        """The context as it is now."""
        return cls(dict(namespace), dict(os.environ), os.getcwd())

    def restore(self, namespace: dict[str, Any]) -> None:
        """Put the context back as it was when recorded."""
        namespace.clear()
        namespace.update(self.names)
        if dict(os.environ) != self.environ:
            os.environ.clear()
            os.environ.update(self.environ)
        if os.getcwd() != self.cwd:
            os.chdir(self.cwd)
        pyplot = sys.modules.get("matplotlib.pyplot")
        if pyplot is not None:
            pyplot.close("all")
