"""dbutils inside an execution context: `fs`, `secrets`, `widgets`, `notebook`, `jobs` and
`library`, with Databricks' names, shapes and errors.

Invariants: the control plane is reached only through its public REST API with the context's
token (never by import); every secret value a context fetched is redacted from its outputs
through `Attached.redact`; `/dbfs/...` paths reach DBFS only inside the DBFS store's root.
"""

from kiln.driver.dbutils.binding import (
    EXIT_MIME,
    NOTEBOOK_RUNS_API,
    RESTART_MIME,
    TASK_VALUE_MIME,
    RunBinding,
    resolve_notebook_path,
)
from kiln.driver.dbutils.dbutils import (
    Attached,
    DBUtils,
    attach,
    bind_run,
    pop_parameters,
    push_parameters,
)
from kiln.driver.dbutils.errors import (
    ApiError,
    ExecutionError,
    InputWidgetNotDefined,
    NotebookExit,
    WorkflowException,
)
from kiln.driver.dbutils.fs import FileInfo, MountInfo
from kiln.driver.dbutils.host import ContextHost
from kiln.driver.dbutils.redaction import REDACTED, Redactor
from kiln.driver.dbutils.secrets import SecretMetadata, SecretScope

__all__ = [
    "EXIT_MIME",
    "NOTEBOOK_RUNS_API",
    "REDACTED",
    "RESTART_MIME",
    "TASK_VALUE_MIME",
    "ApiError",
    "Attached",
    "ContextHost",
    "DBUtils",
    "ExecutionError",
    "FileInfo",
    "InputWidgetNotDefined",
    "MountInfo",
    "NotebookExit",
    "Redactor",
    "RunBinding",
    "SecretMetadata",
    "SecretScope",
    "WorkflowException",
    "attach",
    "bind_run",
    "pop_parameters",
    "push_parameters",
    "resolve_notebook_path",
]
