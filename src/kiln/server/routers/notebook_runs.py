"""Kiln's notebook-runs API under /api/2.0/kiln/notebook-runs (Databricks' public API has
none: `dbutils.notebook.run` inside a context calls it, with the context's token, to run a
child notebook on the same cluster in a fresh context)."""

from __future__ import annotations

import base64
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from kiln.compute.notebook_runs import NotebookRun, NotebookRunRequest, notebook_runs
from kiln.driver.dbutils import NOTEBOOK_RUNS_API
from kiln.server.deps import CurrentPrincipal, State

router = APIRouter(tags=["notebook-runs"])


class SubmitRequest(BaseModel):
    cluster_id: str
    notebook_path: str
    base_parameters: dict[str, str] = Field(default_factory=dict)
    timeout_seconds: int = 0
    parent_run_id: str | None = None


class SubmitResponse(BaseModel):
    run_id: str


class RunIdRequest(BaseModel):
    run_id: str


class RunInfo(BaseModel):
    """A notebook run's state and, once it ended, its result (the exit value) or error."""

    run_id: str
    cluster_id: str
    notebook_path: str
    state: str
    result: str | None = None
    error: str | None = None
    error_trace: str | None = None
    task_values: dict[str, Any] = Field(default_factory=dict)
    parent_run_id: str | None = None
    start_time: int
    end_time: int | None = None

    @classmethod
    def of(cls, run: NotebookRun) -> RunInfo:
        """The wire view of a run."""
        outcome = run.outcome
        return cls(
            run_id=run.run_id,
            cluster_id=run.request.cluster_id,
            notebook_path=run.request.notebook_path,
            state=run.state,
            result=outcome.exit_value if outcome else None,
            error=outcome.error if outcome else None,
            error_trace=outcome.error_trace if outcome else None,
            task_values=outcome.task_values if outcome else {},
            parent_run_id=run.request.parent_run_id,
            start_time=int(run.started_at * 1000),
            end_time=int(run.ended_at * 1000) if run.ended_at else None,
        )


class ExportRunResponse(BaseModel):
    content: str
    file_name: str


@router.post(f"{NOTEBOOK_RUNS_API}/submit")
async def submit(body: SubmitRequest, state: State, me: CurrentPrincipal) -> SubmitResponse:
    """Start a notebook run on a running cluster, in a fresh execution context."""
    request = NotebookRunRequest(
        cluster_id=body.cluster_id,
        notebook_path=body.notebook_path,
        parameters=body.base_parameters,
        timeout_seconds=body.timeout_seconds,
        parent_run_id=body.parent_run_id,
    )
    run = await notebook_runs(state.compute).start(me, request)
    return SubmitResponse(run_id=run.run_id)


@router.get(f"{NOTEBOOK_RUNS_API}/get", response_model_exclude_none=True)
async def get(run_id: str, state: State, me: CurrentPrincipal, wait_seconds: float = 0) -> RunInfo:
    """A run's state; with `wait_seconds`, answered when it ends or after that long."""
    runs = notebook_runs(state.compute)
    run = await runs.wait(me, run_id, wait_seconds) if wait_seconds else runs.get(me, run_id)
    return RunInfo.of(run)


@router.post(f"{NOTEBOOK_RUNS_API}/cancel", response_model_exclude_none=True)
async def cancel(body: RunIdRequest, state: State, me: CurrentPrincipal) -> RunInfo:
    """Cancel a run (nothing happens to one that already ended)."""
    return RunInfo.of(await notebook_runs(state.compute).cancel(me, body.run_id))


@router.get(f"{NOTEBOOK_RUNS_API}/export")
async def export(
    run_id: str,
    state: State,
    me: CurrentPrincipal,
    export_format: Annotated[str, Query(alias="format")] = "JUPYTER",
) -> ExportRunResponse:
    """The run's notebook with its outputs, as JUPYTER (.ipynb) or HTML (base64)."""
    content, name = notebook_runs(state.compute).export(me, run_id, export_format)
    return ExportRunResponse(content=base64.b64encode(content).decode(), file_name=name)
