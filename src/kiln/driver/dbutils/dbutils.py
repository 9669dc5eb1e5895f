"""`DBUtils`, the `dbutils` object of every context, and `attach`, which the REPL calls once
per Python process to build it (and its redactor) around the context's host."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kiln.driver.dbutils.api import ApiClient
from kiln.driver.dbutils.binding import RunBinding
from kiln.driver.dbutils.errors import ExecutionError
from kiln.driver.dbutils.fs import FsUtils
from kiln.driver.dbutils.help import Helpful
from kiln.driver.dbutils.host import ContextHost
from kiln.driver.dbutils.jobs import JobsUtils, TaskValuesUtils
from kiln.driver.dbutils.library import LibraryUtils
from kiln.driver.dbutils.local_dbfs import DbfsPaths
from kiln.driver.dbutils.mlflow_env import use_notebook_experiment
from kiln.driver.dbutils.notebook import NotebookUtils
from kiln.driver.dbutils.recycle import Baseline
from kiln.driver.dbutils.redaction import Redactor
from kiln.driver.dbutils.secrets import SecretsUtils
from kiln.driver.dbutils.widgets import WidgetsUtils

__all__ = ["Attached", "DBUtils", "attach", "bind_run", "pop_parameters", "push_parameters"]


class DBUtils(Helpful):
    """Databricks Utilities: files, secrets, widgets, notebook workflows, jobs and libraries."""

    _TITLE = "dbutils"
    _INTRO = "This module provides various utilities for users to interact with the rest of Kiln."
    _HELP = ("fs", "jobs", "library", "notebook", "secrets", "widgets")

    def __init__(self, host: ContextHost, api: ApiClient, redactor: Redactor) -> None:
        self._host = host
        self._binding: RunBinding | None = None
        # What the context held at its first run; a later run starts from it again.
        self._baseline: Baseline | None = None
        binding: Callable[[], RunBinding | None] = lambda: self._binding  # noqa: E731
        self.fs = FsUtils(api)
        self.secrets = SecretsUtils(api, redactor)
        self.widgets = WidgetsUtils()
        self.notebook = NotebookUtils(api, host.cluster_id, binding, host.emit)
        self.jobs = JobsUtils(TaskValuesUtils(binding, host.emit))
        self.library = LibraryUtils(host, binding)

    def _dbfs_local(self, path: str) -> str:
        """A `/dbfs/...` path as the local file it is (for subprocesses such as pip)."""
        root = self._host.dbfs_root
        return str(DbfsPaths(root).local(path)) if root else path

    def _bind(self, binding: RunBinding) -> None:
        """Bind a notebook run: its path, parameters and upstream task values."""
        self._binding = binding
        self.widgets._bind(binding.parameters)
        use_notebook_experiment(binding.notebook_path)


@dataclass(frozen=True, slots=True)
class Attached:
    """What `attach` gives the REPL: the `dbutils` global and the output redaction."""

    dbutils: DBUtils
    redactor: Redactor
    api: ApiClient

    def redact(self, output: dict[str, Any]) -> dict[str, Any]:
        """An output dict with every secret this context fetched shown as `[REDACTED]`."""
        return self.redactor.redact_output(output)

    def close(self) -> None:
        """Close the connection to the control plane (the process is ending)."""
        self.api.close()


def attach(host: ContextHost) -> Attached:
    """Build the context's `dbutils` (and, with a local DBFS store, its `/dbfs` paths)."""
    redactor = Redactor()
    # The context's own token must never show either.
    redactor.add(host.token)
    api = ApiClient(host)
    if host.dbfs_root:
        DbfsPaths(host.dbfs_root).install()
    return Attached(DBUtils(host, api, redactor), redactor, api)


def _dbutils(namespace: dict[str, Any]) -> DBUtils:
    found = namespace.get("dbutils")
    if not isinstance(found, DBUtils):
        raise ExecutionError("dbutils is not available in this context.")
    return found


def bind_run(namespace: dict[str, Any], binding_json: str) -> None:
    """Bind a notebook run into a context (the runner calls this before the first cell); a
    context that ran a notebook before is made fresh first (`kiln.driver.dbutils.recycle`)."""
    dbutils = _dbutils(namespace)
    if dbutils._baseline is None:
        dbutils._baseline = Baseline.record(namespace)
    else:
        dbutils._baseline.restore(namespace)
        dbutils.widgets.removeAll()
    dbutils._bind(RunBinding.from_json(binding_json))


def push_parameters(namespace: dict[str, Any], parameters_json: str) -> None:
    """Widget parameters of a `%run` with arguments, until `pop_parameters`."""
    parameters = json.loads(parameters_json)
    _dbutils(namespace).widgets._push({str(k): str(v) for k, v in parameters.items()})


def pop_parameters(namespace: dict[str, Any]) -> None:
    """End the parameters of the innermost `%run`."""
    _dbutils(namespace).widgets._pop()
