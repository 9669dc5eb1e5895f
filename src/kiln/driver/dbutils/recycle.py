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
    # The environment as os.environ holds it (encoded), compared in one step at each restore.
    raw_environ: dict[Any, Any] | None = None

    @classmethod
    def record(cls, namespace: dict[str, Any]) -> Baseline:
        """The context as it is now."""
        raw = _raw_environ()
        return cls(
            dict(namespace), dict(os.environ), os.getcwd(), None if raw is None else dict(raw)
        )

    def restore(self, namespace: dict[str, Any]) -> None:
        """Put the context back as it was when recorded."""
        namespace.clear()
        namespace.update(self.names)
        raw = _raw_environ()
        if raw is None or self.raw_environ is None:
            _restore_environ(self.environ)
        elif raw != self.raw_environ:
            _restore_raw_environ(raw, self.raw_environ)
        if os.getcwd() != self.cwd:
            os.chdir(self.cwd)
        pyplot = sys.modules.get("matplotlib.pyplot")
        if pyplot is not None:
            pyplot.close("all")


def _raw_environ() -> dict[Any, Any] | None:
    # CPython's os.environ keeps the encoded variables in a plain dict: comparing two of those
    # costs next to nothing, where reading os.environ decodes every name and value (~60 of
    # them in a context, on every run of a for_each).
    raw = getattr(os.environ, "_data", None)
    return raw if isinstance(raw, dict) else None


def _restore_raw_environ(raw: dict[Any, Any], baseline: dict[Any, Any]) -> None:
    # Only what differs is put back, through os.environ (which also calls putenv/unsetenv):
    # each run's binding sets a variable or two (the MLflow experiment).
    for key in raw.keys() - baseline.keys():
        del os.environ[os.fsdecode(key)]
    for key, value in baseline.items():
        if raw.get(key) != value:
            os.environ[os.fsdecode(key)] = os.fsdecode(value)


def _restore_environ(environ: dict[str, str]) -> None:
    # The same, on an interpreter whose os.environ is not built that way.
    current = dict(os.environ)
    if current == environ:
        return
    for name in current.keys() - environ.keys():
        del os.environ[name]
    for name, value in environ.items():
        if current.get(name) != value:
            os.environ[name] = value
