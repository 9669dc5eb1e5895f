"""What the run driver derives from a run's records alone: the facts references read, a
webhook notice, whether a failed attempt is retried, when the next timer is due."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from kiln.jobs.launch import parameter_map
from kiln.jobs.references import ReferenceContext, TaskFacts
from kiln.jobs.runners.base import TaskOutcome
from kiln.jobs.states import TERMINAL_STATES, LifeCycleState, ResultState
from kiln.store.models import JobRun, JobTaskRun

__all__ = ["next_timer", "notice", "reference_context", "retries", "task_facts"]

_L = LifeCycleState
_R = ResultState


def next_timer(run: JobRun, rows: list[JobTaskRun], now: datetime) -> float | None:
    """Seconds until the next retry or the run's timeout is due; None: nothing is."""
    times = [r.retry_at for r in rows if r.life_cycle_state == _L.WAITING_FOR_RETRY and r.retry_at]
    timeout = int(run.spec.get("timeout_seconds") or 0)
    if timeout and not run.cancel_requested:
        times.append((run.start_time or run.created_at) + timedelta(seconds=timeout))
    if not times:
        return None
    return max(0.0, min((t - now).total_seconds() for t in times)) + 0.01


def task_facts(rows: list[JobTaskRun]) -> dict[str, TaskFacts]:
    """The ended top-level tasks, as `{{tasks.<key>...}}` references read them."""
    return {
        r.task_key: TaskFacts(
            run_id=r.run_id,
            result_state=r.result_state,
            execution_count=r.attempt_number + 1,
            values=r.task_values or {},
            error_code=None if r.result_state in (None, _R.SUCCESS) else r.result_state,
        )
        for r in rows
        # The states are StrEnum members: the stored string is found among them.
        if r.parent_task_run_id is None and r.life_cycle_state in TERMINAL_STATES
    }


def reference_context(
    run: JobRun, rows: list[JobTaskRun], row: JobTaskRun, workspace_id: str, workspace_url: str
) -> ReferenceContext:
    """What the references in one task run's settings resolve against."""
    has_input = row.parent_task_run_id is not None and row.input is not None
    spec = row.spec.get("notebook_task") or {}
    return ReferenceContext(
        job_id=run.job_id,
        job_name=run.spec.get("name", ""),
        run_id=run.run_id,
        start_time=run.start_time or run.created_at,
        trigger_type=run.trigger,
        repair_count=sum(1 for h in run.repair_history or [] if h.get("type") == "REPAIR"),
        parameters=parameter_map(run.job_parameters or []),
        task_key=row.task_key,
        task_run_id=row.run_id,
        attempt=row.attempt_number,
        notebook_path=spec.get("notebook_path", ""),
        tasks=task_facts(rows),
        has_input=has_input,
        input=json.loads(row.input) if has_input and row.input is not None else None,
        workspace_id=workspace_id,
        workspace_url=workspace_url,
    )


def notice(run: JobRun, event: str, row: JobTaskRun | None = None) -> dict[str, Any]:
    """The arguments of a webhook notice of the run (or of one of its task runs)."""
    hooks = (row.spec if row is not None else run.spec).get("webhook_notifications")
    state = {"life_cycle_state": run.life_cycle_state, "result_state": run.result_state}
    task = None
    if row is not None:
        task = {"task_key": row.task_key, "run_id": row.run_id}
        state = {"life_cycle_state": row.life_cycle_state, "result_state": row.result_state}
    return {
        "hooks": hooks,
        "event": event,
        "job_id": run.job_id,
        "job_name": run.spec.get("name", ""),
        "run_id": run.run_id,
        "parent_run_id": run.parent_run_id,
        "task": task,
        "state": state,
    }


def retries(run: JobRun, row: JobTaskRun, outcome: TaskOutcome) -> bool:
    """Whether a failed attempt gets another."""
    if not outcome.retryable or run.cancel_requested or row.cancel_requested:
        return False
    if outcome.result == _R.TIMEDOUT:
        if not row.spec.get("retry_on_timeout"):
            return False
    elif outcome.result != _R.FAILED:
        return False
    limit = int(row.spec.get("max_retries") or 0)
    return limit == -1 or row.attempt_number < limit
