"""`help()` for every dbutils module: the methods it offers, built from their signatures and
docstrings so the listing cannot drift from the code."""

from __future__ import annotations

import inspect
from typing import Any

from kiln.driver.dbutils.errors import ExecutionError

__all__ = ["Helpful", "describe"]


def _signature(func: Any) -> str:
    sig = inspect.signature(func)
    parts = []
    for p in sig.parameters.values():
        if p.name == "self":
            continue
        annotation = p.annotation if isinstance(p.annotation, str) else ""
        text = f"{p.name}: {annotation}" if annotation else p.name
        if p.default is not inspect.Parameter.empty:
            text += f" = {p.default!r}"
        parts.append(text)
    returns = sig.return_annotation if isinstance(sig.return_annotation, str) else ""
    return f"({', '.join(parts)})" + (f" -> {returns}" if returns else "")


def _summary(func: Any) -> str:
    doc = inspect.getdoc(func) or ""
    return doc.splitlines()[0] if doc else ""


def describe(obj: Any, title: str, intro: str, methods: tuple[str, ...]) -> str:
    """The help text of a dbutils module: an introduction, then one line per method."""
    lines = [f"{title}: {intro}", ""]
    for name in methods:
        member = getattr(obj, name)
        if callable(member):
            lines.append(f"{name}{_signature(member)}: {_summary(member)}")
        else:
            lines.append(f"{name}: {_summary(type(member))}")
    return "\n".join(lines)


class Helpful:
    """A dbutils module whose `help()` lists `_HELP` (or details one method)."""

    _TITLE = ""
    _INTRO = ""
    _HELP: tuple[str, ...] = ()

    def help(self, method: str | None = None) -> None:
        """Show what this module offers (or the details of one method)."""
        if method is None:
            print(describe(self, self._TITLE, self._INTRO, self._HELP))
            return
        if method not in self._HELP:
            raise ExecutionError(
                f"{self._TITLE} has no method {method!r}; it offers {', '.join(self._HELP)}."
            )
        member = getattr(self, method)
        print(f"{self._TITLE}.{method}{_signature(member)}\n\n{inspect.getdoc(member) or ''}")

    def __repr__(self) -> str:
        return f"<{self._TITLE}: help() lists {', '.join(self._HELP)}>"
