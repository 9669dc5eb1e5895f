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

__all__ = ["Baseline", "recycle"]


@dataclass(frozen=True, slots=True)
class Baseline:
    """What a context held when its first run was bound."""

    names: dict[str, Any]
    environ: dict[str, str]
    cwd: str


# One context per Python process: its baseline, recorded by the first bind.
_baseline: Baseline | None = None


def recycle(namespace: dict[str, Any]) -> bool:
    """Reset a context that ran a notebook to its baseline; False on its first run (the
    baseline is recorded instead)."""
    global _baseline
    if _baseline is None:
        _baseline = Baseline(dict(namespace), dict(os.environ), os.getcwd())
        return False
    namespace.clear()
    namespace.update(_baseline.names)
    if dict(os.environ) != _baseline.environ:
        os.environ.clear()
        os.environ.update(_baseline.environ)
    if os.getcwd() != _baseline.cwd:
        os.chdir(_baseline.cwd)
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:
        pyplot.close("all")
    return True
