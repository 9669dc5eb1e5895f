"""The Jobs API's run operations: run-now, submit, get, list, cancel, cancel-all, get-output,
export, delete and repair.

Runs are created by the engine (one transaction under its admission lock); reads go straight
to the store, so what a client sees is what a restart would find.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from kiln.errors import InvalidParameterValue, InvalidState, PermissionDenied
from kiln.jobs.checks import check_settings
from kiln.jobs.dag import repair_set
from kiln.jobs.engine import NewRun, new_id, task_row
from kiln.jobs.jobs_service import _limit, _offset, get_job, parse_job_id
from kiln.jobs.launch import LEGACY_PARAMS, can_manage, job_run, merge_parameters
from kiln.jobs.spec import parse_idempotency_token, parse_submit
from kiln.jobs.states import (
    ACTIVE_RUN_STATES,
    TERMINAL_STATES,
    LifeCycleState,
    RunType,
    TriggerType,
    transition,
)
from kiln.jobs.views import run_view, task_run_view
from kiln.paging import encode_page_token
from kiln.principal import Principal
from kiln.store.models import Job, JobRun, JobTaskOutput, JobTaskRun, now_utc, to_epoch_ms

if TYPE_CHECKING:
    from kiln.jobs.service import Jobs

__all__ = [
    "RunPage",
    "cancel_all_runs",
    "cancel_run",
    "delete_run",
    "export_run",
    "get_run",
    "get_run_output",
    "list_runs",
    "parse_run_id",
    "repair_run",
    "run_now",
    "submit_run",
]

MAX_RUNS_LIMIT = 25
DEFAULT_RUNS_LIMIT = 20


def parse_run_id(raw: object, what: str = "run_id") -> int:
    """A run id: an integer or its decimal text."""
    return parse_job_id(raw, what)


async def run_now(jobs: Jobs, principal: Principal, body: dict[str, Any]) -> JobRun:
    """Start a run of a saved job (or find the run its idempotency token already started)."""
    async with jobs.db.session() as session:
        job = await get_job(session, body.get("job_id"))
    if not can_manage(principal, job):
        raise PermissionDenied(f"{principal.user_name} may not run job {job.job_id}.")
    token = parse_idempotency_token(body.get("idempotency_token"))
    new = job_run(
        job,
        trigger=TriggerType.ONE_TIME,
        creator_user_name=principal.user_name,
        job_parameters=_params(body.get("job_parameters")),
        overrides={k: body[k] for k in LEGACY_PARAMS if body.get(k) is not None},
        idempotency_key=f"{job.job_id}:{token}" if token else None,
    )
    new.spec = _only(new.spec, body.get("only"))
    if isinstance(body.get("queue"), dict) and "enabled" in body["queue"]:
        new.spec = {**new.spec, "queue": {"enabled": bool(body["queue"]["enabled"])}}
    run, _ = await jobs.engine.create_run(new)
    return run


def _params(raw: object) -> dict[str, Any] | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise InvalidParameterValue("job_parameters must be an object of strings.")
    return raw


def _only(spec: dict[str, Any], only: object) -> dict[str, Any]:
    """The settings with only the named tasks (dependencies on the others dropped)."""
    if not only:
        return spec
    if not isinstance(only, list) or not all(isinstance(k, str) for k in only):
        raise InvalidParameterValue("only must be an array of task keys.")
    keys = {t["task_key"] for t in spec["tasks"]}
    for key in only:
        if key not in keys:
            raise InvalidParameterValue(f"only: the job has no task {key!r}.")
    tasks = []
    for task in spec["tasks"]:
        if task["task_key"] in only:
            deps = [d for d in task.get("depends_on", []) if d["task_key"] in only]
            task = {k: v for k, v in task.items() if k != "depends_on"}
            if deps:
                task["depends_on"] = deps
            tasks.append(task)
    return {**spec, "tasks": tasks}


async def submit_run(jobs: Jobs, principal: Principal, body: dict[str, Any]) -> JobRun:
    """Start a one-time run that is not saved as a job."""
    spec = parse_submit(body)
    token = parse_idempotency_token(body.get("idempotency_token"))
    async with jobs.db.session() as session:
        await check_settings(session, jobs.engine.clusters, principal, spec)
    new = NewRun(
        spec=spec,
        run_type=RunType.SUBMIT_RUN.value,
        trigger=TriggerType.ONE_TIME.value,
        run_name=spec["name"],
        creator_user_name=principal.user_name,
        run_as_id=principal.user_id or None,
        run_as_user_name=principal.user_name,
        idempotency_key=f"submit:{token}" if token else None,
    )
    run, _ = await jobs.engine.create_run(new)
    return run


async def _find(session: AsyncSession, run_id: int) -> tuple[JobRun, JobTaskRun | None]:
    """The job run, and the task run when `run_id` names one."""
    run = await session.get(JobRun, run_id, populate_existing=True)
    if run is not None:
        return run, None
    row = await session.get(JobTaskRun, run_id, populate_existing=True)
    if row is not None:
        parent = await session.get(JobRun, row.job_run_id, populate_existing=True)
        if parent is not None:
            return parent, row
    raise InvalidParameterValue(f"Run {run_id} does not exist.")


async def _rows(session: AsyncSession, job_run_id: int) -> list[JobTaskRun]:
    return list(
        (
            await session.scalars(
                select(JobTaskRun)
                .where(JobTaskRun.job_run_id == job_run_id, JobTaskRun.current.is_(True))
                .execution_options(populate_existing=True)
            )
        ).all()
    )


async def get_run(
    session: AsyncSession,
    jobs: Jobs,
    run_id: object,
    *,
    include_history: bool = False,
    include_resolved_values: bool = False,
) -> dict[str, Any]:
    """A job run with its tasks (or a task run, with a for_each task's iterations)."""
    rid = parse_run_id(run_id)
    run, task = await _find(session, rid)
    rows = await _rows(session, run.run_id)
    if task is not None:
        iterations = [r for r in rows if r.parent_task_run_id == task.run_id]
        iterations.sort(key=lambda r: r.iteration or 0)
        return task_run_view(
            run, task, iterations, base_url=jobs.base_url, include_resolved=include_resolved_values
        )
    return run_view(
        run,
        rows,
        base_url=jobs.base_url,
        include_history=include_history,
        include_resolved=include_resolved_values,
    )


@dataclass(frozen=True, slots=True)
class RunPage:
    """One page of runs/list."""

    runs: list[dict[str, Any]]
    has_more: bool
    next_page_token: str | None
    prev_page_token: str | None


def _flag(raw: object) -> bool:
    if isinstance(raw, bool):
        return raw
    return str(raw).lower() == "true" if raw is not None else False


async def list_runs(
    session: AsyncSession,
    jobs: Jobs,
    *,
    job_id: object = None,
    active_only: object = None,
    completed_only: object = None,
    run_type: object = None,
    expand_tasks: object = None,
    limit: object = None,
    offset: object = None,
    page_token: object = None,
    start_time_from: object = None,
    start_time_to: object = None,
) -> RunPage:
    """Runs, newest first, filtered and one page at a time."""
    active, completed = _flag(active_only), _flag(completed_only)
    if active and completed:
        raise InvalidParameterValue("active_only and completed_only cannot both be true.")
    size = _limit(limit, DEFAULT_RUNS_LIMIT, MAX_RUNS_LIMIT)
    start = _offset(offset, page_token)
    query = select(JobRun)
    if job_id is not None and job_id != "":
        query = query.where(JobRun.job_id == parse_job_id(job_id))
    live = [s.value for s in ACTIVE_RUN_STATES] + [LifeCycleState.QUEUED.value]
    if active:
        query = query.where(JobRun.life_cycle_state.in_(live))
    if completed:
        query = query.where(JobRun.life_cycle_state.not_in(live))
    if run_type:
        if run_type not in {t.value for t in RunType}:
            raise InvalidParameterValue(f"run_type: unknown run type {run_type!r}.")
        query = query.where(JobRun.run_type == run_type)
    for raw, op in ((start_time_from, "ge"), (start_time_to, "le")):
        if raw is not None and raw != "":
            try:
                moment = datetime.fromtimestamp(int(str(raw)) / 1000, tz=UTC)
            except ValueError:
                raise InvalidParameterValue("start_time_from/to are epoch milliseconds.") from None
            column = JobRun.created_at
            query = query.where(column >= moment if op == "ge" else column <= moment)
    query = query.order_by(JobRun.created_at.desc(), JobRun.run_id.desc()).offset(start)
    rows = list((await session.scalars(query.limit(size + 1))).all())
    more = len(rows) > size
    rows = rows[:size]
    expand = _flag(expand_tasks)
    views = []
    for run in rows:
        tasks = await _rows(session, run.run_id) if expand else []
        views.append(run_view(run, tasks, base_url=jobs.base_url, expand_tasks=expand))
    return RunPage(
        runs=views,
        has_more=more,
        next_page_token=encode_page_token(start + size) if more else None,
        prev_page_token=encode_page_token(max(0, start - size)) if start > 0 else None,
    )


async def _require_run_manage(session: AsyncSession, principal: Principal, run: JobRun) -> None:
    if principal.is_admin:
        return
    if run.job_id is not None:
        job = await session.get(Job, run.job_id)
        if job is not None and can_manage(principal, job):
            return
    if run.run_as_id is not None and run.run_as_id == principal.user_id:
        return
    raise PermissionDenied(f"{principal.user_name} may not manage run {run.run_id}.")


async def cancel_run(jobs: Jobs, principal: Principal, run_id: object) -> None:
    """Cancel a job run or one task run (asynchronously, as on Databricks)."""
    rid = parse_run_id(run_id)
    async with jobs.db.session() as session:
        run, task = await _find(session, rid)
        await _require_run_manage(session, principal, run)
    if task is not None:
        if LifeCycleState(task.life_cycle_state) not in TERMINAL_STATES:
            await jobs.engine.cancel_task(run.run_id, task.run_id)
        return
    await jobs.engine.request_cancel(run.run_id)


async def cancel_all_runs(
    jobs: Jobs, principal: Principal, job_id: object, all_queued_runs: object
) -> None:
    """Cancel every active run of a job (or every queued run of the workspace)."""
    live = [s.value for s in ACTIVE_RUN_STATES] + [LifeCycleState.QUEUED.value]
    async with jobs.db.session() as session:
        query = select(JobRun)
        if job_id is not None:
            job = await get_job(session, job_id)
            if not can_manage(principal, job):
                raise PermissionDenied(
                    f"{principal.user_name} may not cancel runs of job {job.job_id}."
                )
            query = query.where(JobRun.job_id == job.job_id, JobRun.life_cycle_state.in_(live))
        elif _flag(all_queued_runs):
            query = query.where(JobRun.life_cycle_state == LifeCycleState.QUEUED.value)
            if not principal.is_admin:
                query = query.where(JobRun.run_as_id == principal.user_id)
        else:
            raise InvalidParameterValue("job_id is required (or all_queued_runs: true).")
        runs = list((await session.scalars(query)).all())
    for run in runs:
        await jobs.engine.request_cancel(run.run_id)


async def get_run_output(session: AsyncSession, jobs: Jobs, run_id: object) -> dict[str, Any]:
    """`RunOutput` of a task run (or of a job run with a single task)."""
    rid = parse_run_id(run_id)
    run, task = await _find(session, rid)
    rows = await _rows(session, run.run_id)
    if task is None:
        top = [r for r in rows if r.parent_task_run_id is None]
        if len(top) != 1:
            raise InvalidParameterValue(
                "Retrieving the output of runs with multiple tasks is not supported. Please "
                "retrieve the output of each individual task run instead."
            )
        task = top[0]
    stored = await session.get(JobTaskOutput, task.run_id)
    iterations = [r for r in rows if r.parent_task_run_id == task.run_id]
    out: dict[str, Any] = dict(stored.output) if stored is not None else {}
    out["metadata"] = task_run_view(run, task, iterations, base_url=jobs.base_url)
    return out


async def export_run(
    session: AsyncSession, run_id: object, views_to_export: object = None
) -> dict[str, Any]:
    """runs/export: a notebook task run's notebook with its outputs, as HTML."""
    rid = parse_run_id(run_id)
    which = views_to_export or "CODE"
    if which not in ("CODE", "DASHBOARDS", "ALL"):
        raise InvalidParameterValue("views_to_export must be CODE, DASHBOARDS or ALL.")
    run, task = await _find(session, rid)
    if task is None:
        top = [r for r in await _rows(session, run.run_id) if r.parent_task_run_id is None]
        notebooks = [r for r in top if "notebook_task" in r.spec]
        if len(notebooks) != 1:
            raise InvalidParameterValue(
                "runs/export exports one notebook task run; give the run_id of a task run."
            )
        task = notebooks[0]
    if "notebook_task" not in task.spec:
        raise InvalidParameterValue(f"Run {rid} is not a notebook task run; nothing to export.")
    if which == "DASHBOARDS":
        return {"views": []}
    stored = await session.get(JobTaskOutput, task.run_id)
    if stored is None or stored.notebook is None:
        raise InvalidState(f"Run {rid} has no notebook output yet.")
    from kiln.compute.notebook_runs import notebook_html

    name = task.spec["notebook_task"]["notebook_path"].rsplit("/", 1)[-1]
    html = notebook_html(stored.notebook, name)
    return {"views": [{"content": html, "name": name, "type": "NOTEBOOK"}]}


async def delete_run(session: AsyncSession, principal: Principal, run_id: object) -> None:
    """Delete a run that has ended, with its task runs and outputs."""
    rid = parse_run_id(run_id)
    run = await session.get(JobRun, rid)
    if run is None:
        raise InvalidParameterValue(f"Run {rid} does not exist.")
    await _require_run_manage(session, principal, run)
    if LifeCycleState(run.life_cycle_state) not in TERMINAL_STATES:
        raise InvalidState(f"Run {rid} is still active; cancel it before deleting it.")
    await session.delete(run)
    await session.flush()


async def repair_run(jobs: Jobs, principal: Principal, body: dict[str, Any]) -> int:
    """Rerun the failed tasks of an ended run (or those named) and the tasks after them that
    did not succeed, as part of the same run; the repair's id."""
    rid = parse_run_id(body.get("run_id"))
    rerun_tasks = body.get("rerun_tasks") or []
    if not isinstance(rerun_tasks, list) or not all(isinstance(k, str) for k in rerun_tasks):
        raise InvalidParameterValue("rerun_tasks must be an array of task keys.")
    rerun_all = _flag(body.get("rerun_all_failed_tasks"))
    if not rerun_tasks and not rerun_all:
        raise InvalidParameterValue("Either rerun_tasks or rerun_all_failed_tasks is required.")
    if rerun_tasks and rerun_all:
        raise InvalidParameterValue("Set rerun_tasks or rerun_all_failed_tasks, not both.")
    async with jobs.engine.lock, jobs.db.session() as session:
        run = await session.get(JobRun, rid, populate_existing=True)
        if run is None:
            raise InvalidParameterValue(f"Run {rid} does not exist.")
        await _require_run_manage(session, principal, run)
        life = LifeCycleState(run.life_cycle_state)
        if life not in (LifeCycleState.TERMINATED, LifeCycleState.INTERNAL_ERROR):
            raise InvalidState(
                f"Run {rid} is {life.value}; only a run that has ended (and ran) can be repaired."
            )
        history = list(run.repair_history or [])
        repairs = [h for h in history if h.get("type") == "REPAIR"]
        latest = body.get("latest_repair_id")
        if repairs and (latest is None or str(latest) != str(repairs[-1]["id"])):
            raise InvalidParameterValue(
                f"latest_repair_id must be {repairs[-1]['id']}, the run's latest repair."
            )
        if not repairs and latest is not None:
            raise InvalidParameterValue("latest_repair_id: the run has not been repaired yet.")
        spec = run.spec
        if run.job_id is not None:
            job = await session.get(Job, run.job_id)
            if job is not None and {t["task_key"] for t in job.settings.get("tasks", [])} >= {
                t["task_key"] for t in spec.get("tasks", [])
            }:
                spec = job.settings
        tasks = {t["task_key"]: t for t in spec.get("tasks", [])}
        for key in rerun_tasks:
            if key not in tasks:
                raise InvalidParameterValue(f"rerun_tasks: the run has no task {key!r}.")
        rows = await _rows(session, rid)
        top = {r.task_key: r for r in rows if r.parent_task_run_id is None}
        graph = {k: [d["task_key"] for d in t.get("depends_on", [])] for k, t in tasks.items()}
        results = {k: (r.life_cycle_state, r.result_state) for k, r in top.items()}
        keys = repair_set(
            graph,
            results,
            rerun_tasks,
            rerun_all_failed=rerun_all,
            rerun_dependent=_flag(body.get("rerun_dependent_tasks")),
        )
        if not keys:
            raise InvalidParameterValue("The run has no failed tasks to repair.")
        if body.get("job_parameters") is not None:
            run.job_parameters = merge_parameters(
                spec.get("parameters", []), _params(body["job_parameters"]), "job_parameters"
            )
        legacy = {k: body[k] for k in LEGACY_PARAMS if body.get(k) is not None}
        if legacy:
            run.overriding_parameters = {**(run.overriding_parameters or {}), **legacy}
        now = now_utc()
        if not history:
            history.append(
                {
                    "type": "ORIGINAL",
                    "start_time": to_epoch_ms(run.start_time or run.created_at),
                    "end_time": to_epoch_ms(run.end_time or now),
                    "state": {
                        "life_cycle_state": run.life_cycle_state,
                        "result_state": run.result_state,
                    },
                    "task_run_ids": [r.run_id for r in top.values()],
                }
            )
        repair_id = new_id()
        new_ids = []
        for row in rows:
            if row.task_key in keys or (
                row.parent_task_run_id is not None
                and any(top[k].run_id == row.parent_task_run_id for k in keys if k in top)
            ):
                row.current = False
        for key in sorted(keys, key=list(tasks).index):
            fresh = task_row(rid, tasks[key], repair_id=repair_id)
            session.add(fresh)
            new_ids.append(fresh.run_id)
        history.append(
            {
                "type": "REPAIR",
                "id": repair_id,
                "start_time": to_epoch_ms(now),
                "end_time": 0,
                "state": {"life_cycle_state": "PENDING"},
                "task_run_ids": new_ids,
            }
        )
        run.repair_history = history
        run.spec = spec
        transition(run, LifeCycleState.PENDING, "")
        run.end_time = None
        run.cancel_requested = None
        run.user_cancelled_or_timedout = False
        run.job_clusters = {}
        run.owner = jobs.engine.owner
        await session.commit()
    jobs.engine.drive(rid)
    return repair_id
