"""notebook_task: a workspace notebook run on the task's cluster in a fresh execution context,
its parameters as widgets, its `dbutils.notebook.exit` value as the task's result and its
`dbutils.jobs.taskValues` as the task's values (through the compute layer's notebook runs).

A notebook is driven cell by cell from the control plane, so an attempt that was running when
the control plane stopped cannot be found again: it is not resumable (and never run twice).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from kiln.jobs.retry import retry_when_locked
from kiln.jobs.runners.base import TaskContext, TaskOutcome
from kiln.jobs.states import ResultState

if TYPE_CHECKING:
    from kiln.compute.service import Compute

__all__ = ["NotebookTaskRunner"]


class NotebookTaskRunner:
    """Runs notebook tasks."""

    # Its first command goes out right after it has its cluster (and a context on it).
    STARTS_AT_ONCE = True

    def __init__(self, compute: Compute, starts: asyncio.Semaphore | None = None) -> None:
        self.compute = compute
        self.starts = starts or asyncio.Semaphore(3)

    def resumable(self, checkpoint: Mapping[str, Any]) -> bool:
        """Never: the notebook's runner lived in the stopped control plane."""
        return False

    async def run(self, ctx: TaskContext) -> TaskOutcome:
        """Run the notebook to its end (cancelling cancels the notebook run)."""
        from kiln.compute.notebook_runs import NotebookRun, NotebookRunRequest, notebook_runs

        assert ctx.cluster_id is not None
        body = ctx.spec["notebook_task"]
        runs = notebook_runs(self.compute)
        request = NotebookRunRequest(
            cluster_id=ctx.cluster_id,
            notebook_path=body["notebook_path"],
            parameters=dict(body.get("base_parameters") or {}),
            task_values=ctx.task_values,
            task_key=ctx.task_key,
            parent_run_id=str(ctx.job_run_id),
            # A for_each's iterations read the notebook once, when the first one starts.
            snapshot=(
                f"for_each:{ctx.parent_task_run_id}" if ctx.parent_task_run_id is not None else None
            ),
        )

        async def ready(run: NotebookRun) -> None:
            # Recorded RUNNING before the first command goes out: a control plane killed after
            # this never runs the notebook again; one killed before it never ran it.
            await ctx.mark_started({"notebook_run_id": run.run_id, "context_id": run.context_id})

        async with self.starts:
            # Nothing exists yet when the store refuses the context's token: safe to retry.
            run = await retry_when_locked(lambda: runs.start(ctx.principal, request, ready))
        try:
            await run.done.wait()
        except asyncio.CancelledError:
            if not ctx.stopping():
                await asyncio.shield(runs.cancel(ctx.principal, run.run_id))
            raise
        outcome = run.outcome
        if outcome is None:
            return TaskOutcome.failed("The notebook run ended without an outcome.")
        state = ResultState(outcome.state.value)
        common: dict[str, Any] = {
            "task_values": dict(outcome.task_values),
            "notebook": outcome.notebook,
        }
        if state == ResultState.SUCCESS:
            return TaskOutcome(ResultState.SUCCESS, "", exit_value=outcome.exit_value, **common)
        message = outcome.error or f"The notebook run ended {state.value}."
        return TaskOutcome(
            state,
            message,
            error=outcome.error or message,
            error_trace=outcome.error_trace,
            retryable=state != ResultState.CANCELED,
            **common,
        )
