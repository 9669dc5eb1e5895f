"""The notebook runner: a workspace notebook run cell by cell in an execution context, with
Databricks' magics (%python, %sql, %md, %sh, %fs, %pip, %run) and its record kept as .ipynb.

Invariants: the runner lives outside the context it drives (so `%pip` can restart the
context's Python); cell text reaches the context only as a `repr` literal; a `%run` cycle or a
missing notebook fails the run with a clear error; the run's notebook never shows the data
dbutils emits for the runner (exit value, task values, restarts).
"""

from kiln.driver.notebook.ipynb import RunRecord, clean_output
from kiln.driver.notebook.magics import CellCommand, MagicError, parse_cell, split_sql
from kiln.driver.notebook.markdown import render_markdown
from kiln.driver.notebook.runner import (
    CellOutcome,
    CellStatus,
    NotebookHost,
    NotebookRunner,
    RunOutcome,
    RunResultState,
)
from kiln.driver.notebook.source import NotebookError, NotebookSource, parse_ipynb

__all__ = [
    "CellCommand",
    "CellOutcome",
    "CellStatus",
    "MagicError",
    "NotebookError",
    "NotebookHost",
    "NotebookRunner",
    "NotebookSource",
    "RunOutcome",
    "RunRecord",
    "RunResultState",
    "clean_output",
    "parse_cell",
    "parse_ipynb",
    "render_markdown",
    "split_sql",
]
