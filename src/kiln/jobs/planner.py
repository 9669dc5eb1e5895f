"""The next steps of a job run, decided from its task runs alone (a pure function).

The run's driver loads the current attempt of every task (and of every for_each iteration),
asks `plan` what to do, applies the actions and asks again until nothing is left to decide
now: release a task whose dependencies ended (or skip it, by its run_if), launch what is ready
(up to a for_each's concurrency), retry after its interval, end a for_each whose iterations
all ended, cancel what a cancel reached, and end the run once every task ended. Everything
that takes time (a notebook, a child run) happens in executors outside the planner.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from kiln.jobs.dag import DepStatus, dependency_status, run_if_verdict, run_result
from kiln.jobs.spec import task_kind
from kiln.jobs.states import TERMINAL_STATES, LifeCycleState, ResultState

__all__ = [
    "Action",
    "Cancel",
    "Evaluate",
    "Expand",
    "FinishForEach",
    "FinishRun",
    "Launch",
    "Skip",
    "TaskRow",
    "is_terminal",
    "plan",
]

_L = LifeCycleState
_R = ResultState


class TaskRow(Protocol):
    """The attributes of a task run the planner reads."""

    run_id: int
    task_key: str
    parent_task_run_id: int | None
    iteration: int | None
    spec: dict[str, Any]
    life_cycle_state: str
    result_state: str | None
    executor: str | None
    retry_at: datetime | None
    condition_outcome: str | None
    cancel_requested: bool


@dataclass(frozen=True, slots=True)
class Launch:
    """Start (or, after a restart, resume) executing a task run."""

    row: TaskRow
    resume: bool = False


@dataclass(frozen=True, slots=True)
class Evaluate:
    """Evaluate a condition_task now (it takes no time)."""

    row: TaskRow


@dataclass(frozen=True, slots=True)
class Expand:
    """Start a for_each task: resolve its inputs and create its iterations."""

    row: TaskRow


@dataclass(frozen=True, slots=True)
class Skip:
    """End a task run that will not run, with this result."""

    row: TaskRow
    result: ResultState
    message: str


@dataclass(frozen=True, slots=True)
class Cancel:
    """Stop an executing task run (its executor records how it ended)."""

    row: TaskRow


@dataclass(frozen=True, slots=True)
class FinishForEach:
    """End a for_each task whose iterations all ended."""

    row: TaskRow
    result: ResultState
    message: str


@dataclass(frozen=True, slots=True)
class FinishRun:
    """End the run with this result."""

    result: ResultState
    message: str


Action = Launch | Evaluate | Expand | Skip | Cancel | FinishForEach | FinishRun


def is_terminal(row: TaskRow) -> bool:
    """Whether a task run has ended."""
    # The states are StrEnum members: the stored string is found among them as it is.
    return row.life_cycle_state in TERMINAL_STATES


def _executing(row: TaskRow) -> bool:
    return row.executor is not None and row.life_cycle_state in (_L.PENDING, _L.RUNNING)


def _start(row: TaskRow, resume: bool = False) -> Action:
    kind = task_kind(row.spec)
    if kind == "condition_task":
        return Evaluate(row)
    if kind == "for_each_task" and not resume:
        return Expand(row)
    return Launch(row, resume=resume)


def _deps_status(row: TaskRow, top: Mapping[str, TaskRow]) -> list[DepStatus] | None:
    """How each dependency ended; None while one has not."""
    out = []
    for dep in row.spec.get("depends_on", []):
        other = top.get(dep["task_key"])
        if other is None:
            out.append(DepStatus.FAILED)
            continue
        if not is_terminal(other):
            return None
        out.append(
            dependency_status(
                other.life_cycle_state,
                other.result_state,
                other.condition_outcome,
                dep.get("outcome"),
            )
        )
    return out


def _cancel_actions(rows: Sequence[TaskRow], message: str) -> list[Action]:
    actions: list[Action] = []
    for row in rows:
        if is_terminal(row):
            continue
        kind = task_kind(row.spec)
        if kind == "for_each_task" and row.life_cycle_state == _L.RUNNING:
            continue  # ends once its iterations have
        actions.append(_stop(row, message))
    return actions


def _stop(row: TaskRow, message: str) -> Action:
    """Stop a task run: cancel its executor, resume it first if a restart left it without
    one (only its runner knows how to stop what it started), or skip it if it never began."""
    if _executing(row):
        return Cancel(row)
    if row.life_cycle_state == _L.RUNNING:
        return Launch(row, resume=True)
    return Skip(row, _R.CANCELED, message)


def _for_each(row: TaskRow, iterations: Sequence[TaskRow], cancel: bool) -> list[Action]:
    concurrency = int(row.spec["for_each_task"].get("concurrency") or 1)
    if all(is_terminal(i) for i in iterations):
        results = [i.result_state for i in iterations]
        failed = [i for i in iterations if i.result_state != _R.SUCCESS]
        if not failed:
            return [FinishForEach(row, _R.SUCCESS, "")]
        if cancel or all(r == _R.CANCELED for r in results if r != _R.SUCCESS):
            return [FinishForEach(row, _R.CANCELED, "The for_each task was canceled.")]
        return [
            FinishForEach(
                row,
                _R.FAILED,
                f"{len(failed)} of {len(iterations)} iterations did not succeed.",
            )
        ]
    if cancel:
        return []
    active = sum(
        1
        for i in iterations
        if i.life_cycle_state in (_L.PENDING, _L.RUNNING, _L.WAITING_FOR_RETRY)
    )
    if active >= concurrency:
        return []
    queued = [i for i in iterations if i.life_cycle_state == _L.QUEUED]
    queued.sort(key=lambda r: r.iteration or 0)
    return [_start(i) for i in queued[: concurrency - active]]


def plan(
    rows: Sequence[TaskRow],
    graph: Mapping[str, Sequence[str]],
    now: datetime,
    *,
    cancel_message: str | None = None,
) -> list[Action]:
    """What to do next, given the current attempt of every task and iteration of a run.

    `graph` maps every task key to its dependencies' keys; `cancel_message` is set once the
    whole run is being canceled (by a user, or its timeout)."""
    top = {r.task_key: r for r in rows if r.parent_task_run_id is None}
    iterations: dict[int, list[TaskRow]] = {}
    for r in rows:
        if r.parent_task_run_id is not None:
            iterations.setdefault(r.parent_task_run_id, []).append(r)
    if cancel_message is not None:
        actions = _cancel_actions(rows, cancel_message)
        for row in top.values():
            if task_kind(row.spec) == "for_each_task" and row.life_cycle_state == _L.RUNNING:
                actions += _for_each(row, iterations.get(row.run_id, []), cancel=True)
        if not actions and all(is_terminal(r) for r in rows):
            return [FinishRun(_R.CANCELED, cancel_message)]
        return actions
    actions = []
    for row in rows:
        if row.cancel_requested and not is_terminal(row):
            if task_kind(row.spec) == "for_each_task" and row.life_cycle_state == _L.RUNNING:
                for i in iterations.get(row.run_id, []):
                    if not is_terminal(i):
                        actions.append(_stop(i, "The task run was canceled."))
                actions += _for_each(row, iterations.get(row.run_id, []), cancel=True)
            else:
                actions.append(_stop(row, "The task run was canceled."))
    if actions:
        return actions
    for row in top.values():
        actions += _next(row, top, iterations, now)
    # Iterations in retry are launched by their own time, like tasks.
    for group in iterations.values():
        for i in group:
            if i.life_cycle_state == _L.WAITING_FOR_RETRY and _due(i, now):
                actions.append(_start(i))
            elif i.life_cycle_state == _L.RUNNING and i.executor is None:
                actions.append(_start(i, resume=True))
            elif i.life_cycle_state == _L.PENDING and i.executor is None:
                actions.append(_start(i))
    if not actions and top and all(is_terminal(r) for r in top.values()):
        results = {k: (r.life_cycle_state, r.result_state) for k, r in top.items()}
        result, message = run_result(graph, results)
        return [FinishRun(result, message)]
    if not actions and not top:
        return [FinishRun(_R.SUCCESS, "")]
    return actions


def _due(row: TaskRow, now: datetime) -> bool:
    return row.retry_at is None or row.retry_at <= now


def _next(
    row: TaskRow,
    top: Mapping[str, TaskRow],
    iterations: Mapping[int, Sequence[TaskRow]],
    now: datetime,
) -> list[Action]:
    life = LifeCycleState(row.life_cycle_state)
    if life == _L.BLOCKED:
        deps = _deps_status(row, top)
        if deps is None:
            return []
        if row.spec.get("disabled"):
            return [Skip(row, _R.DISABLED, "The task is disabled.")]
        verdict = run_if_verdict(row.spec.get("run_if"), deps)
        if not verdict.run:
            assert verdict.result is not None
            return [Skip(row, verdict.result, verdict.message)]
        return [_start(row)]
    if life == _L.PENDING and row.executor is None:
        if row.spec.get("disabled"):
            return [Skip(row, _R.DISABLED, "The task is disabled.")]
        return [_start(row)]
    if life == _L.WAITING_FOR_RETRY and _due(row, now):
        return [_start(row)]
    if life == _L.RUNNING:
        if task_kind(row.spec) == "for_each_task":
            return _for_each(row, iterations.get(row.run_id, []), cancel=False)
        if row.executor is None:
            return [_start(row, resume=True)]
    return []
