"""Jobs, runs and task runs as Databricks' wire objects (`Job`, `Run`, `RunTask`, `RunOutput`).

Times are epoch milliseconds; durations are milliseconds. A job saved in Jobs API 2.0's
single-task shape also carries that task's fields at the top of its settings (and its runs at
the top of the run), so 2.0 clients (the legacy CLI) and 2.1/2.2 clients read the same object.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from kiln.jobs.spec import task_kind
from kiln.jobs.states import TERMINAL_STATES, LifeCycleState, ResultState, termination_of
from kiln.store.models import Job, JobRun, JobTaskRun, to_epoch_ms

__all__ = [
    "LEGACY_TASK_VIEW_FIELDS",
    "for_each_stats",
    "job_view",
    "run_view",
    "task_run_view",
    "task_view",
]

LEGACY_TASK_VIEW_FIELDS = (
    "notebook_task",
    "spark_python_task",
    "python_wheel_task",
    "existing_cluster_id",
    "new_cluster",
    "libraries",
    "max_retries",
    "min_retry_interval_millis",
    "retry_on_timeout",
)
_V2 = {
    LifeCycleState.WAITING_FOR_RETRY: "WAITING",
    LifeCycleState.SKIPPED: "TERMINATED",
    LifeCycleState.INTERNAL_ERROR: "TERMINATED",
}


def _ms(moment: datetime | None) -> int:
    return to_epoch_ms(moment) if moment is not None else 0


def _duration(start: datetime | None, end: datetime | None) -> int:
    if start is None or end is None:
        return 0
    return max(0, int((end - start).total_seconds() * 1000))


def job_view(job: Job, *, expand_tasks: bool = True) -> dict[str, Any]:
    """`Job` (jobs/get) or `BaseJob` (jobs/list)."""
    settings = dict(job.settings)
    if settings.get("format") == "SINGLE_TASK" and settings.get("tasks"):
        for name in LEGACY_TASK_VIEW_FIELDS:
            if name in settings["tasks"][0]:
                settings[name] = settings["tasks"][0][name]
    if not expand_tasks:
        settings.pop("tasks", None)
        settings.pop("job_clusters", None)
    return {
        "job_id": job.job_id,
        "creator_user_name": job.creator_user_name,
        "run_as_user_name": job.run_as_user_name or job.creator_user_name,
        "created_time": _ms(job.created_at),
        "settings": settings,
        "has_more": False,
    }


def _state(holder: JobRun | JobTaskRun) -> dict[str, Any]:
    state: dict[str, Any] = {
        "life_cycle_state": holder.life_cycle_state,
        "state_message": holder.state_message or "",
        "user_cancelled_or_timedout": bool(getattr(holder, "user_cancelled_or_timedout", False)),
    }
    if holder.result_state is not None:
        state["result_state"] = holder.result_state
    queue_reason = getattr(holder, "queue_reason", None)
    if queue_reason:
        state["queue_reason"] = queue_reason
    return state


def _status(holder: JobRun | JobTaskRun) -> dict[str, Any]:
    life = LifeCycleState(holder.life_cycle_state)
    status: dict[str, Any] = {"state": _V2.get(life, life.value)}
    if life in TERMINAL_STATES:
        result = ResultState(holder.result_state) if holder.result_state else None
        code, kind = termination_of(
            life, result, bool(getattr(holder, "user_cancelled_or_timedout", False))
        )
        status["termination_details"] = {
            "code": code.value,
            "type": kind.value,
            "message": holder.state_message or "",
        }
    queue_reason = getattr(holder, "queue_reason", None)
    if life == LifeCycleState.QUEUED and queue_reason:
        status["queue_details"] = {"code": "MAX_CONCURRENT_RUNS_REACHED", "message": queue_reason}
    return status


def for_each_stats(iterations: Sequence[JobTaskRun]) -> dict[str, Any]:
    """`ForEachStats` of a for_each task's current iterations."""
    terminal = [i for i in iterations if LifeCycleState(i.life_cycle_state) in TERMINAL_STATES]
    succeeded = [i for i in terminal if i.result_state == ResultState.SUCCESS]
    failed = [i for i in terminal if i.result_state != ResultState.SUCCESS]
    active = [
        i
        for i in iterations
        if i.life_cycle_state
        in (LifeCycleState.PENDING, LifeCycleState.RUNNING, LifeCycleState.WAITING_FOR_RETRY)
    ]
    errors = Counter((i.state_message or i.result_state or "") for i in failed)
    return {
        "task_run_stats": {
            "total_iterations": len(iterations),
            "scheduled_iterations": len(iterations) - len(terminal) - len(active),
            "active_iterations": len(active),
            "completed_iterations": len(terminal),
            "succeeded_iterations": len(succeeded),
            "failed_iterations": len(failed),
        },
        "error_message_stats": [
            {"error_message": message, "count": count, "termination_category": "FAILED"}
            for message, count in errors.most_common(10)
        ],
    }


def task_view(
    row: JobTaskRun,
    iterations: Sequence[JobTaskRun] | None = None,
    *,
    base_url: str = "",
    job_id: int | None = None,
    include_resolved: bool = False,
) -> dict[str, Any]:
    """`RunTask`: a task's settings with the state and times of its current attempt."""
    view: dict[str, Any] = dict(row.spec)
    kind = task_kind(row.spec)
    end = row.end_time
    view.update(
        {
            "run_id": row.run_id,
            "task_key": row.task_key,
            "attempt_number": row.attempt_number,
            "state": _state(row),
            "status": _status(row),
            "start_time": _ms(row.start_time),
            "end_time": _ms(end),
            "setup_duration": _duration(row.start_time, row.running_at or end),
            "execution_duration": _duration(row.running_at, end),
            "cleanup_duration": 0,
            "run_duration": _duration(row.start_time, end),
            "run_page_url": f"{base_url}/#job/{job_id or '-'}/run/{row.run_id}",
        }
    )
    if row.original_attempt_run_id is not None:
        view["original_attempt_run_id"] = row.original_attempt_run_id
    if row.cluster_id:
        view["cluster_instance"] = {"cluster_id": row.cluster_id}
    if kind == "condition_task" and row.condition_outcome is not None:
        view["condition_task"] = {**view["condition_task"], "outcome": row.condition_outcome}
    if kind == "for_each_task":
        view["for_each_task"] = {
            **view["for_each_task"],
            "stats": for_each_stats(list(iterations or [])),
        }
    if row.parent_task_run_id is not None and row.input is not None:
        view["input"] = row.input
    if include_resolved and row.resolved and row.resolved.get("values"):
        view["resolved_values"] = row.resolved["values"]
    return view


def _top_and_iterations(
    rows: Sequence[JobTaskRun],
) -> tuple[list[JobTaskRun], dict[int, list[JobTaskRun]]]:
    top = [r for r in rows if r.parent_task_run_id is None]
    iterations: dict[int, list[JobTaskRun]] = {}
    for r in rows:
        if r.parent_task_run_id is not None:
            iterations.setdefault(r.parent_task_run_id, []).append(r)
    for group in iterations.values():
        group.sort(key=lambda r: (r.iteration or 0, r.attempt_number))
    return top, iterations


def run_view(
    run: JobRun,
    rows: Sequence[JobTaskRun],
    *,
    base_url: str = "",
    include_history: bool = False,
    include_resolved: bool = False,
    expand_tasks: bool = True,
) -> dict[str, Any]:
    """`Run` (runs/get) or `BaseRun` (runs/list)."""
    order = {t["task_key"]: i for i, t in enumerate(run.spec.get("tasks", []))}
    top, iterations = _top_and_iterations(rows)
    top.sort(key=lambda r: order.get(r.task_key, len(order)))
    start = run.start_time or run.created_at
    view: dict[str, Any] = {
        "run_id": run.run_id,
        "number_in_job": run.run_id,
        "original_attempt_run_id": run.run_id,
        "attempt_number": 0,
        "run_name": run.run_name,
        "run_type": run.run_type,
        "trigger": run.trigger,
        "creator_user_name": run.creator_user_name,
        "run_as_user_name": run.run_as_user_name,
        "state": _state(run),
        "status": _status(run),
        "start_time": _ms(start),
        "end_time": _ms(run.end_time),
        "queue_duration": _duration(run.created_at, run.start_time),
        "setup_duration": 0,
        "execution_duration": _duration(start, run.end_time),
        "cleanup_duration": 0,
        "run_duration": _duration(start, run.end_time),
        "run_page_url": f"{base_url}/#job/{run.job_id or '-'}/run/{run.run_id}",
        "format": run.spec.get("format", "MULTI_TASK"),
        "has_more": False,
    }
    if run.job_id is not None:
        view["job_id"] = run.job_id
    if run.parent_run_id is not None:
        view["trigger_info"] = {"run_id": run.parent_run_id}
    if run.job_parameters:
        view["job_parameters"] = run.job_parameters
    if run.overriding_parameters:
        view["overriding_parameters"] = run.overriding_parameters
    if run.spec.get("description"):
        view["description"] = run.spec["description"]
    if run.spec.get("schedule") and run.trigger == "PERIODIC":
        view["schedule"] = run.spec["schedule"]
    if expand_tasks:
        view["tasks"] = [
            task_view(
                r,
                iterations.get(r.run_id),
                base_url=base_url,
                job_id=run.job_id,
                include_resolved=include_resolved,
            )
            for r in top
        ]
        if run.spec.get("job_clusters"):
            view["job_clusters"] = run.spec["job_clusters"]
    if include_history:
        view["repair_history"] = run.repair_history or [
            {
                "type": "ORIGINAL",
                "start_time": _ms(start),
                "end_time": _ms(run.end_time),
                "state": _state(run),
                "task_run_ids": [r.run_id for r in top],
            }
        ]
    if run.spec.get("format") == "SINGLE_TASK" and top:
        task = top[0]
        legacy = {k: task.spec[k] for k in LEGACY_TASK_VIEW_FIELDS if k in task.spec}
        view["task"] = {k: v for k, v in legacy.items() if k.endswith("_task")}
        view["cluster_spec"] = {k: v for k, v in legacy.items() if not k.endswith("_task")}
        if task.cluster_id:
            view["cluster_instance"] = {"cluster_id": task.cluster_id}
    return view


def task_run_view(
    run: JobRun,
    row: JobTaskRun,
    iterations: Sequence[JobTaskRun],
    *,
    base_url: str = "",
    include_resolved: bool = False,
) -> dict[str, Any]:
    """runs/get of a task run id: the task run as a run of its own (a for_each task's with
    its iterations)."""
    view = task_view(
        row, iterations, base_url=base_url, job_id=run.job_id, include_resolved=include_resolved
    )
    out: dict[str, Any] = {
        key: view[key]
        for key in (
            "run_id",
            "state",
            "status",
            "start_time",
            "end_time",
            "setup_duration",
            "execution_duration",
            "cleanup_duration",
            "run_duration",
            "attempt_number",
            "run_page_url",
        )
    }
    out.update(
        {
            "job_run_id": run.run_id,
            "run_name": run.run_name,
            "run_type": run.run_type,
            "trigger": run.trigger,
            "creator_user_name": run.creator_user_name,
            "tasks": [view],
            "has_more": False,
        }
    )
    if run.job_id is not None:
        out["job_id"] = run.job_id
    if row.original_attempt_run_id is not None:
        out["original_attempt_run_id"] = row.original_attempt_run_id
    if row.cluster_id:
        out["cluster_instance"] = {"cluster_id": row.cluster_id}
    if task_kind(row.spec) == "for_each_task":
        out["iterations"] = [
            task_view(i, base_url=base_url, job_id=run.job_id, include_resolved=include_resolved)
            for i in iterations
        ]
    return out
