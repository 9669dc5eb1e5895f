"""Task runners: the code that executes one attempt of a task on a cluster.

The engine holds one runner per task kind; `default_runners` gives the real ones (imported
when a server builds its jobs service), tests give their own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kiln.jobs.runners.base import (
    ClusterProvider,
    ClusterRequest,
    Reporter,
    TaskContext,
    TaskOutcome,
    TaskRunner,
)

if TYPE_CHECKING:
    from kiln.compute.service import Compute

# Execution contexts the jobs engine starts at the same time (on all clusters together).
MAX_CONTEXT_STARTS = 3

__all__ = [
    "MAX_CONTEXT_STARTS",
    "ClusterProvider",
    "ClusterRequest",
    "Reporter",
    "TaskContext",
    "TaskOutcome",
    "TaskRunner",
    "default_runners",
]


def default_runners(compute: Compute) -> dict[str, TaskRunner]:
    """The runners of a running server, by task kind."""
    import asyncio

    from kiln.jobs.runners.notebook import NotebookTaskRunner
    from kiln.jobs.runners.python import PythonTaskRunner

    # Creating an execution context holds a store transaction (its token) while the driver
    # starts the REPL; a for_each at concurrency 16 starting 16 at once queues on SQLite's
    # single writer until some give up ("database is locked"). A few at a time start as fast.
    starts = asyncio.Semaphore(MAX_CONTEXT_STARTS)
    python = PythonTaskRunner(compute, starts)
    return {
        "notebook_task": NotebookTaskRunner(compute, starts),
        "spark_python_task": python,
        "python_wheel_task": python,
    }
