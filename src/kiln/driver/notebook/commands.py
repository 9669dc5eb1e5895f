"""The Python code the runner sends into a context: one statement per magic cell, and the
calls that bind a run's parameters. Everything passes through `repr`, so cell text can never
break out of the string it travels in."""

from __future__ import annotations

import json

from kiln.driver.dbutils.binding import RunBinding
from kiln.driver.notebook.magics import CellCommand
from kiln.driver.repl.cells import PRELUDE_TAG

__all__ = ["bind_code", "cell_code", "pop_code", "push_code"]

_INCELL = "__import__('kiln.driver.notebook.incell', fromlist=['run_sql']).{fn}(globals(), {arg})"
_DBUTILS = "__import__('kiln.driver.dbutils', fromlist=['bind_run']).{fn}(globals(){args})"
_FUNCTIONS = {"sql": "run_sql", "sh": "run_shell", "fs": "run_fs", "pip": "run_pip"}


def cell_code(command: CellCommand) -> str:
    """The Python that runs a python, sql, sh, fs or pip cell."""
    if command.kind == "python":
        return command.body
    fn = _FUNCTIONS.get(command.kind)
    if fn is None:
        raise ValueError(f"{command.kind} cells are not run as code")
    return _INCELL.format(fn=fn, arg=repr(command.body))


def bind_code(binding: RunBinding) -> str:
    """Bind a run (path, parameters, task values) into the context's dbutils: one line, tagged
    so that the REPL runs it as a prelude when it comes first in a cell's command."""
    return _DBUTILS.format(fn="bind_run", args=f", {binding.to_json()!r}") + PRELUDE_TAG


def push_code(parameters: dict[str, str]) -> str:
    """Push the widget parameters of a `%run` with arguments."""
    return _DBUTILS.format(fn="push_parameters", args=f", {json.dumps(parameters)!r}")


def pop_code() -> str:
    """Pop the parameters of the innermost `%run`."""
    return _DBUTILS.format(fn="pop_parameters", args="")
