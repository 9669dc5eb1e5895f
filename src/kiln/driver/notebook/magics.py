"""Cell magics: which kind of command a notebook cell is, parsed from its first line.

A cell is `%<magic>` on its first line (`%sql`, `%md`, `%sh`, `%fs`, `%pip`, `%run`, `%python`)
or plain code in the notebook's language. Pure functions, tested without a cluster.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

from kiln.driver.repl.sql import split_statements

__all__ = [
    "RUNNABLE",
    "CellCommand",
    "MagicError",
    "parse_cell",
    "parse_run_arguments",
    "split_sql",
]

_MAGIC = re.compile(r"^%([A-Za-z][\w-]*)[ \t]*(.*)$")
# What Kiln runs; scala and r are Databricks languages a Python context cannot run.
RUNNABLE = ("python", "sql", "md", "sh", "fs", "pip", "run")
_ALIASES = {"md-sandbox": "md", "py": "python", "sh": "sh"}
_UNSUPPORTED = {
    "scala": "Scala cells are not supported: Kiln's execution contexts run Python and SQL.",
    "r": "R cells are not supported: Kiln's execution contexts run Python and SQL.",
    "conda": "%conda is not supported; use %pip.",
}
_LANGUAGES = {"python": "python", "sql": "sql", "scala": "scala", "r": "r"}


class MagicError(ValueError):
    """A cell Kiln cannot run (an unknown or unsupported magic, a malformed %run)."""


@dataclass(frozen=True, slots=True)
class CellCommand:
    """A cell as Kiln runs it: its kind and its text without the magic."""

    kind: str
    # The text after the magic (the first line's rest, then the following lines).
    body: str
    # %run only: the notebook path and its widget arguments.
    target: str = ""
    arguments: dict[str, str] = field(default_factory=dict)


def _body(first_rest: str, rest: str) -> str:
    if first_rest and rest:
        return f"{first_rest}\n{rest}"
    return first_rest or rest


def parse_cell(source: str, language: str) -> CellCommand:
    """The command of a cell in a notebook whose language is `language` (`python`, `sql`...)."""
    first, _, rest = source.partition("\n")
    match = _MAGIC.match(first.rstrip())
    if match is None:
        kind = _LANGUAGES.get(language.lower())
        if kind is None:
            raise MagicError(f"Notebooks in {language} are not supported.")
        if kind in _UNSUPPORTED:
            raise MagicError(_UNSUPPORTED[kind])
        return CellCommand(kind=kind, body=source)
    name = match.group(1)
    kind = _ALIASES.get(name, name)
    if kind in _UNSUPPORTED:
        raise MagicError(_UNSUPPORTED[kind])
    if kind not in RUNNABLE:
        raise MagicError(
            f"Unknown magic %{name}: Kiln runs %python, %sql, %md, %sh, %fs, %pip and %run."
        )
    first_rest = match.group(2).strip()
    if kind == "run":
        if rest.strip():
            raise MagicError("%run must be alone in its cell.")
        target, arguments = parse_run_arguments(first_rest)
        return CellCommand(kind="run", body=first_rest, target=target, arguments=arguments)
    if kind == "md":
        # Markdown keeps its own indentation and blank lines.
        return CellCommand(kind="md", body=_body(match.group(2).strip(), rest))
    return CellCommand(kind=kind, body=_body(first_rest, rest))


_ARGUMENT = re.compile(r"^\$?([A-Za-z_][\w.-]*)=(.*)$", re.DOTALL)


def parse_run_arguments(text: str) -> tuple[str, dict[str, str]]:
    """`./path $a="1" $b=2` → ("./path", {"a": "1", "b": "2"})."""
    try:
        tokens = shlex.split(text)
    except ValueError as exc:
        raise MagicError(f"Malformed %run line: {exc}") from None
    if not tokens:
        raise MagicError("%run needs a notebook path, e.g. %run ./helpers")
    target, *rest = tokens
    arguments: dict[str, str] = {}
    for token in rest:
        match = _ARGUMENT.match(token)
        if match is None:
            raise MagicError(f'Malformed %run argument {token!r}; write $name="value".')
        arguments[match.group(1)] = match.group(2)
    return target, arguments


# A %sql cell splits exactly as a SQL command of the 1.2 API does (quotes and comments kept
# whole, comment-only statements dropped): one splitter serves both.
split_sql = split_statements
