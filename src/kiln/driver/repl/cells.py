"""Turning a cell's text into code the REPL runs, as a notebook does.

The text is dedented (API clients such as databricks-sdk's remote dbutils send indented code),
registered with `linecache` under `<command-N>` so tracebacks show its lines, and split so that
a last expression statement is evaluated and its value shown. Pure code.
"""

from __future__ import annotations

import ast
import linecache
import textwrap
import traceback
from dataclasses import dataclass
from types import CodeType, TracebackType

__all__ = [
    "PRELUDE_TAG",
    "CompiledCell",
    "compile_cell",
    "format_exception",
    "prepare_source",
    "split_prelude",
]

# A command's first line ending with this tag is the notebook runner's own statement (it binds
# a run), sent with the run's first cell to save a round trip: it runs before the cell and is
# not one of the cell's lines (tracebacks, `from __future__`, indentation stay the cell's).
PRELUDE_TAG = "  # kiln:prelude"

# Tracebacks stop showing frames once they reach the REPL's own code.
_INTERNAL = ("kiln/driver/repl/",)


@dataclass(frozen=True, slots=True)
class CompiledCell:
    """A cell's statements and, when the cell ends with an expression, that expression."""

    body: CodeType | None
    last: CodeType | None


def prepare_source(code: str) -> str:
    """The cell's text with common leading indentation removed and tabs kept."""
    # Leading blank lines are not part of the code's indentation.
    stripped = code.lstrip("\r\n")
    if stripped[:1] in (" ", "\t"):
        return textwrap.dedent(stripped)
    return code


def split_prelude(code: str) -> tuple[str | None, str]:
    """(the runner's prelude statement or None, the cell's own code)."""
    first, newline, rest = code.partition("\n")
    if newline and first.endswith(PRELUDE_TAG):
        return first, rest
    return None, code


def compile_cell(code: str, filename: str) -> CompiledCell:
    """Parse and compile a cell (raises SyntaxError with the cell's filename)."""
    source = prepare_source(code)
    # Tracebacks and `inspect` find the cell's lines through linecache.
    linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
    tree = ast.parse(source, filename=filename, mode="exec")
    last: CodeType | None = None
    final = tree.body[-1] if tree.body else None
    if isinstance(final, ast.Expr):
        tree.body.pop()
        last = compile(ast.Expression(final.value), filename, "eval")
    body = compile(tree, filename, "exec") if tree.body else None
    return CompiledCell(body, last)


def _user_frames(tb: TracebackType | None) -> TracebackType | None:
    # Skip the REPL's own frames at the top: the user sees their code only.
    while tb is not None and any(p in tb.tb_frame.f_code.co_filename for p in _INTERNAL):
        tb = tb.tb_next
    return tb


def format_exception(exc: BaseException) -> tuple[str, str, list[str]]:
    """(ename, evalue, traceback lines) of an exception raised by a cell."""
    ename = type(exc).__name__
    evalue = str(exc)
    if isinstance(exc, SyntaxError):
        lines = traceback.format_exception_only(type(exc), exc)
    else:
        tb = _user_frames(exc.__traceback__)
        lines = traceback.format_exception(type(exc), exc, tb)
    return ename, evalue, lines
