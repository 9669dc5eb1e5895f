"""Notebook runs: a workspace notebook run on a cluster in a fresh execution context, with its
exit value, error, task values and notebook (.ipynb with outputs, exportable as HTML).

Invariants: a run reads notebooks as its own user; its context is destroyed when it ends,
however it ends; a user sees only their own runs (admins see all).
"""

from kiln.compute.notebook_runs.export import notebook_html
from kiln.compute.notebook_runs.host import ContextGateway, fetch_notebook
from kiln.compute.notebook_runs.service import (
    NotebookRun,
    NotebookRunRequest,
    NotebookRuns,
    RunState,
    notebook_runs,
)

__all__ = [
    "ContextGateway",
    "NotebookRun",
    "NotebookRunRequest",
    "NotebookRuns",
    "RunState",
    "fetch_notebook",
    "notebook_html",
    "notebook_runs",
]
