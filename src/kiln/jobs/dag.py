"""The task graph's rules as pure functions: cycles, run_if, a run's result, what a repair
reruns. Databricks' documented semantics:

- A dependency counts as succeeded, failed, canceled or excluded (an EXCLUDED or DISABLED
  task, or a condition_task whose outcome is not the one `depends_on` asks for). Excluded
  dependencies count as succeeded, except that a task all of whose dependencies are excluded
  is excluded itself.
- ALL_SUCCESS, AT_LEAST_ONE_SUCCESS and NONE_FAILED that are not met make the task
  UPSTREAM_FAILED (UPSTREAM_CANCELED when the cause is a cancel); AT_LEAST_ONE_FAILED and
  ALL_FAILED that are not met make it EXCLUDED; ALL_DONE always runs. A canceled dependency
  counts as failed for the failure-handling conditions, so cleanup tasks still run.
- A run SUCCEEDs when every task did, ends SUCCESS_WITH_FAILURES when some task failed but no
  leaf task (one nothing depends on) did, and FAILED when a leaf failed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from kiln.jobs.states import LifeCycleState, ResultState, RunIf

__all__ = [
    "DepStatus",
    "Verdict",
    "dependants",
    "dependency_status",
    "find_cycle",
    "leaves",
    "repair_set",
    "run_if_verdict",
    "run_result",
]


class DepStatus(StrEnum):
    """How one dependency ended, as run_if sees it."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"
    EXCLUDED = "excluded"


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether a task runs; if not, the result it gets and why."""

    run: bool
    result: ResultState | None = None
    message: str = ""


_R = ResultState
_FAILED = {_R.FAILED, _R.TIMEDOUT, _R.UPSTREAM_FAILED, _R.MAXIMUM_CONCURRENT_RUNS_REACHED}
_CANCELED = {_R.CANCELED, _R.UPSTREAM_CANCELED}
_EXCLUDED = {_R.EXCLUDED, _R.DISABLED}


def find_cycle(graph: Mapping[str, Iterable[str]]) -> list[str] | None:
    """A dependency cycle (`a -> b -> a`, by task key) in `{task: [dependencies]}`, or None."""
    state: dict[str, int] = {}
    for start in graph:
        if state.get(start):
            continue
        # Iterative DFS: a 1000-task chain must not hit the recursion limit.
        stack: list[tuple[str, list[str]]] = [(start, list(graph.get(start, ())))]
        path = [start]
        state[start] = 1
        while stack:
            node, pending = stack[-1]
            if not pending:
                stack.pop()
                path.pop()
                state[node] = 2
                continue
            nxt = pending.pop()
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                stack.append((nxt, list(graph.get(nxt, ()))))
    return None


def dependants(graph: Mapping[str, Iterable[str]], keys: Iterable[str]) -> set[str]:
    """Every task that depends on one of `keys`, directly or through others."""
    children: dict[str, list[str]] = {}
    for task, deps in graph.items():
        for dep in deps:
            children.setdefault(dep, []).append(task)
    found: set[str] = set()
    todo = list(keys)
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def leaves(graph: Mapping[str, Iterable[str]]) -> set[str]:
    """Tasks nothing depends on."""
    depended = {dep for deps in graph.values() for dep in deps}
    return {task for task in graph if task not in depended}


def dependency_status(
    life: LifeCycleState | str,
    result: ResultState | str | None,
    outcome: str | None = None,
    expected_outcome: str | None = None,
) -> DepStatus:
    """How an ended dependency counts (with the condition outcome `depends_on` asks for)."""
    if life == LifeCycleState.INTERNAL_ERROR or result is None:
        return DepStatus.FAILED
    res = ResultState(result)
    if res in _EXCLUDED:
        return DepStatus.EXCLUDED
    if res in _FAILED:
        return DepStatus.FAILED
    if res in _CANCELED:
        return DepStatus.CANCELED
    if expected_outcome is not None and outcome != expected_outcome:
        return DepStatus.EXCLUDED
    return DepStatus.SUCCEEDED


def run_if_verdict(run_if: RunIf | str | None, deps: list[DepStatus]) -> Verdict:
    """Whether a task whose dependencies all ended runs, by its run_if."""
    if not deps:
        return Verdict(True)
    condition = RunIf(run_if or RunIf.ALL_SUCCESS)
    if all(d == DepStatus.EXCLUDED for d in deps):
        return Verdict(False, _R.EXCLUDED, "All of the task's dependencies were excluded.")
    succeeded = sum(d in (DepStatus.SUCCEEDED, DepStatus.EXCLUDED) for d in deps)
    failed = deps.count(DepStatus.FAILED)
    canceled = deps.count(DepStatus.CANCELED)
    if condition == RunIf.ALL_DONE:
        return Verdict(True)
    if condition in (RunIf.ALL_SUCCESS, RunIf.NONE_FAILED):
        met = failed == 0 and canceled == 0
    elif condition == RunIf.AT_LEAST_ONE_SUCCESS:
        met = succeeded > 0
    elif condition == RunIf.AT_LEAST_ONE_FAILED:
        met = failed + canceled > 0
    else:  # ALL_FAILED
        met = succeeded == 0
    if met:
        return Verdict(True)
    if condition in (RunIf.AT_LEAST_ONE_FAILED, RunIf.ALL_FAILED):
        return Verdict(
            False,
            _R.EXCLUDED,
            f"The task's run_if {condition.value} was not met, so it was excluded.",
        )
    if failed:
        return Verdict(False, _R.UPSTREAM_FAILED, "Upstream task(s) failed.")
    return Verdict(False, _R.UPSTREAM_CANCELED, "Upstream task(s) were canceled.")


def run_result(
    graph: Mapping[str, Iterable[str]],
    results: Mapping[str, tuple[LifeCycleState | str, ResultState | str | None]],
) -> tuple[ResultState, str]:
    """A finished run's result from its tasks' results, and the message that goes with it."""
    status = {key: dependency_status(life, result) for key, (life, result) in results.items()}
    leaf = leaves(graph)
    failed_leaves = sorted(k for k in leaf if status.get(k) == DepStatus.FAILED)
    canceled_leaves = sorted(k for k in leaf if status.get(k) == DepStatus.CANCELED)
    if failed_leaves:
        return _R.FAILED, f"Task {failed_leaves[0]} failed." if len(failed_leaves) == 1 else (
            f"{len(failed_leaves)} tasks failed: {', '.join(failed_leaves[:5])}."
        )
    if canceled_leaves:
        return _R.CANCELED, "Task(s) were canceled."
    if any(s in (DepStatus.FAILED, DepStatus.CANCELED) for s in status.values()):
        return _R.SUCCESS_WITH_FAILURES, "Some tasks failed, but every leaf task succeeded."
    return _R.SUCCESS, ""


def repair_set(
    graph: Mapping[str, Iterable[str]],
    results: Mapping[str, tuple[LifeCycleState | str, ResultState | str | None]],
    rerun_tasks: Iterable[str],
    *,
    rerun_all_failed: bool,
    rerun_dependent: bool,
) -> set[str]:
    """The tasks a repair reruns: those asked for (or every failed one), and the tasks after
    them that did not succeed (all of them with `rerun_dependent`)."""
    chosen = set(rerun_tasks)
    if rerun_all_failed:
        chosen |= {
            key
            for key, (life, result) in results.items()
            if dependency_status(life, result) in (DepStatus.FAILED, DepStatus.CANCELED)
        }
    after = dependants(graph, chosen)
    if not rerun_dependent:
        after = {
            key
            for key in after
            if key not in results or dependency_status(*results[key]) not in (DepStatus.SUCCEEDED,)
        }
    return chosen | after
