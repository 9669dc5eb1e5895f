"""Jobs API wire shapes (Databricks' `/api/2.2/jobs/...` field names; 2.0 and 2.1 alias it).

Requests are typed loosely (`Any`, extra fields kept) so that `kiln.jobs.spec` refuses a bad
value with Databricks' error code and the field's full path (`tasks[2].depends_on[0]...`)
rather than a generic validation error; Jobs API 2.0 shapes (a single task at the top of the
settings, job ids as strings) are accepted as they come and converted by the domain.
Responses are the domain's views of jobs and runs, which carry every field Databricks returns.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

__all__ = [
    "CancelAllRunsRequest",
    "CreateJobRequest",
    "CreateJobResponse",
    "ExportRunOutput",
    "JobIdRequest",
    "JobView",
    "ListJobsResponse",
    "ListRunsResponse",
    "RepairRunRequest",
    "RepairRunResponse",
    "ResetJobRequest",
    "RunIdRequest",
    "RunNowRequest",
    "RunNowResponse",
    "RunOutputView",
    "RunView",
    "SubmitRunRequest",
    "SubmitRunResponse",
    "UpdateJobRequest",
    "ViewItem",
]


class _Loose(BaseModel):
    """A request body kept as sent (the domain validates it)."""

    model_config = ConfigDict(extra="allow")

    def body(self) -> dict[str, Any]:
        """The request as a plain dict (null fields dropped)."""
        return {k: v for k, v in self.model_dump().items() if v is not None}


class CreateJobRequest(_Loose):
    """`jobs/create`: the job's settings (2.0's single-task shape too)."""

    name: Any = None
    tasks: Any = None


class JobIdRequest(BaseModel):
    """`jobs/delete`."""

    job_id: Any = None


class UpdateJobRequest(BaseModel):
    """`jobs/update`."""

    job_id: Any = None
    new_settings: Any = None
    fields_to_remove: Any = None


class ResetJobRequest(BaseModel):
    """`jobs/reset`."""

    job_id: Any = None
    new_settings: Any = None


class RunNowRequest(_Loose):
    """`jobs/run-now`: the job, job parameters, legacy per-kind parameters, token."""

    job_id: Any = None
    idempotency_token: Any = None
    job_parameters: Any = None


class SubmitRunRequest(_Loose):
    """`jobs/runs/submit`: a one-time run's tasks (2.0's single-task shape too)."""

    run_name: Any = None
    tasks: Any = None
    idempotency_token: Any = None


class RunIdRequest(BaseModel):
    """`jobs/runs/cancel`, `jobs/runs/delete`."""

    run_id: Any = None


class CancelAllRunsRequest(BaseModel):
    """`jobs/runs/cancel-all`."""

    job_id: Any = None
    all_queued_runs: Any = None


class RepairRunRequest(_Loose):
    """`jobs/runs/repair`."""

    run_id: Any = None
    rerun_tasks: Any = None
    rerun_all_failed_tasks: Any = None
    rerun_dependent_tasks: Any = None
    latest_repair_id: Any = None
    job_parameters: Any = None


class CreateJobResponse(BaseModel):
    job_id: int


class JobView(BaseModel):
    """`Job` / `BaseJob`: the domain's view, every Databricks field it has."""

    model_config = ConfigDict(extra="allow")

    job_id: int
    settings: dict[str, Any] = {}


class ListJobsResponse(BaseModel):
    jobs: list[JobView] = []
    has_more: bool = False
    next_page_token: str | None = None
    prev_page_token: str | None = None


class RunNowResponse(BaseModel):
    run_id: int
    number_in_job: int


class SubmitRunResponse(BaseModel):
    run_id: int


class RunView(BaseModel):
    """`Run` / `BaseRun` (or a task run seen as a run)."""

    model_config = ConfigDict(extra="allow")

    run_id: int


class ListRunsResponse(BaseModel):
    runs: list[RunView] = []
    has_more: bool = False
    next_page_token: str | None = None
    prev_page_token: str | None = None


class RunOutputView(BaseModel):
    """`RunOutput`."""

    model_config = ConfigDict(extra="allow")

    metadata: dict[str, Any] = {}


class ViewItem(BaseModel):
    content: str
    name: str
    type: str


class ExportRunOutput(BaseModel):
    views: list[ViewItem] = []


class RepairRunResponse(BaseModel):
    repair_id: int
