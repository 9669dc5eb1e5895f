"""Jobs API under /api/2.2/jobs (/api/2.0/jobs and /api/2.1/jobs are aliases of it)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from kiln.jobs import jobs_service as job_ops
from kiln.jobs import runs_service as run_ops
from kiln.jobs.views import job_view
from kiln.server.deps import CurrentPrincipal, Session, State
from kiln.server.schemas.jobs import (
    CancelAllRunsRequest,
    CreateJobRequest,
    CreateJobResponse,
    ExportRunOutput,
    JobIdRequest,
    JobView,
    ListJobsResponse,
    ListRunsResponse,
    RepairRunRequest,
    RepairRunResponse,
    ResetJobRequest,
    RunIdRequest,
    RunNowRequest,
    RunNowResponse,
    RunOutputView,
    RunView,
    SubmitRunRequest,
    SubmitRunResponse,
    UpdateJobRequest,
)

router = APIRouter(prefix="/api/2.2/jobs", tags=["jobs"])

Text = Annotated[str | None, Query()]


def _flag(raw: str | None) -> bool:
    return raw is not None and raw.lower() == "true"


@router.post("/create")
async def create(
    body: CreateJobRequest, session: Session, state: State, me: CurrentPrincipal
) -> CreateJobResponse:
    """Create a job."""
    job_id = await job_ops.create_job(session, state.jobs, me, body.body())
    return CreateJobResponse(job_id=job_id)


@router.get("/get", response_model_exclude_none=True)
async def get(
    session: Session, me: CurrentPrincipal, job_id: Text = None, page_token: Text = None
) -> JobView:
    """One job with its settings (every task: no page follows)."""
    return JobView.model_validate(job_view(await job_ops.get_job(session, job_id)))


@router.get("/list", response_model_exclude_none=True)
async def list_(
    session: Session,
    me: CurrentPrincipal,
    limit: Text = None,
    offset: Text = None,
    page_token: Text = None,
    name: Text = None,
    expand_tasks: Text = None,
) -> ListJobsResponse:
    """Jobs, newest first, a page at a time."""
    page = await job_ops.list_jobs(
        session, limit=limit, offset=offset, page_token=page_token, name=name
    )
    expand = _flag(expand_tasks)
    return ListJobsResponse(
        jobs=[JobView.model_validate(job_view(j, expand_tasks=expand)) for j in page.jobs],
        has_more=page.has_more,
        next_page_token=page.next_page_token,
        prev_page_token=page.prev_page_token,
    )


@router.post("/update")
async def update(
    body: UpdateJobRequest, session: Session, state: State, me: CurrentPrincipal
) -> dict[str, Any]:
    """Change some of a job's settings."""
    await job_ops.update_job(
        session, state.jobs, me, body.job_id, body.new_settings, body.fields_to_remove
    )
    return {}


@router.post("/reset")
async def reset(
    body: ResetJobRequest, session: Session, state: State, me: CurrentPrincipal
) -> dict[str, Any]:
    """Replace a job's settings."""
    await job_ops.reset_job(session, state.jobs, me, body.job_id, body.new_settings)
    return {}


@router.post("/delete")
async def delete(
    body: JobIdRequest, session: Session, state: State, me: CurrentPrincipal
) -> dict[str, Any]:
    """Delete a job (its active runs are canceled)."""
    await job_ops.delete_job(session, state.jobs, me, body.job_id)
    return {}


@router.post("/run-now")
async def run_now(body: RunNowRequest, state: State, me: CurrentPrincipal) -> RunNowResponse:
    """Start a run of a job."""
    run = await run_ops.run_now(state.jobs, me, body.body())
    return RunNowResponse(run_id=run.run_id, number_in_job=run.run_id)


@router.post("/runs/submit")
async def submit(body: SubmitRunRequest, state: State, me: CurrentPrincipal) -> SubmitRunResponse:
    """Start a one-time run."""
    run = await run_ops.submit_run(state.jobs, me, body.body())
    return SubmitRunResponse(run_id=run.run_id)


@router.get("/runs/get", response_model_exclude_none=True)
async def get_run(
    session: Session,
    state: State,
    me: CurrentPrincipal,
    run_id: Text = None,
    include_history: Text = None,
    include_resolved_values: Text = None,
    page_token: Text = None,
) -> RunView:
    """A run with its tasks (or a task run, with a for_each task's iterations)."""
    view = await run_ops.get_run(
        session,
        state.jobs,
        run_id,
        include_history=_flag(include_history),
        include_resolved_values=_flag(include_resolved_values),
    )
    return RunView.model_validate(view)


@router.get("/runs/list", response_model_exclude_none=True)
async def list_runs(
    session: Session,
    state: State,
    me: CurrentPrincipal,
    job_id: Text = None,
    active_only: Text = None,
    completed_only: Text = None,
    run_type: Text = None,
    expand_tasks: Text = None,
    limit: Text = None,
    offset: Text = None,
    page_token: Text = None,
    start_time_from: Text = None,
    start_time_to: Text = None,
) -> ListRunsResponse:
    """Runs, newest first, a page at a time."""
    page = await run_ops.list_runs(
        session,
        state.jobs,
        job_id=job_id,
        active_only=active_only,
        completed_only=completed_only,
        run_type=run_type,
        expand_tasks=expand_tasks,
        limit=limit,
        offset=offset,
        page_token=page_token,
        start_time_from=start_time_from,
        start_time_to=start_time_to,
    )
    return ListRunsResponse(
        runs=[RunView.model_validate(r) for r in page.runs],
        has_more=page.has_more,
        next_page_token=page.next_page_token,
        prev_page_token=page.prev_page_token,
    )


@router.post("/runs/cancel")
async def cancel(body: RunIdRequest, state: State, me: CurrentPrincipal) -> dict[str, Any]:
    """Cancel a run or a task run (asynchronously)."""
    await run_ops.cancel_run(state.jobs, me, body.run_id)
    return {}


@router.post("/runs/cancel-all")
async def cancel_all(
    body: CancelAllRunsRequest, state: State, me: CurrentPrincipal
) -> dict[str, Any]:
    """Cancel every active run of a job (or every queued run)."""
    await run_ops.cancel_all_runs(state.jobs, me, body.job_id, body.all_queued_runs)
    return {}


@router.get("/runs/get-output", response_model_exclude_none=True)
async def get_output(
    session: Session, state: State, me: CurrentPrincipal, run_id: Text = None
) -> RunOutputView:
    """A task run's output: exit value, logs, error."""
    return RunOutputView.model_validate(await run_ops.get_run_output(session, state.jobs, run_id))


@router.get("/runs/export")
async def export(
    session: Session, me: CurrentPrincipal, run_id: Text = None, views_to_export: Text = None
) -> ExportRunOutput:
    """A notebook task run's notebook with its outputs, as HTML."""
    return ExportRunOutput.model_validate(
        await run_ops.export_run(session, run_id, views_to_export)
    )


@router.post("/runs/delete")
async def delete_run(body: RunIdRequest, session: Session, me: CurrentPrincipal) -> dict[str, Any]:
    """Delete a run that has ended."""
    await run_ops.delete_run(session, me, body.run_id)
    return {}


@router.post("/runs/repair")
async def repair(body: RepairRunRequest, state: State, me: CurrentPrincipal) -> RepairRunResponse:
    """Rerun the failed tasks of an ended run and what depends on them."""
    repair_id = await run_ops.repair_run(state.jobs, me, body.body())
    return RepairRunResponse(repair_id=repair_id)
