"""The task graph's rules: cycles, every run_if, condition outcomes, a run's result, what a
repair reruns; and the run life cycle's transitions."""

from __future__ import annotations

import pytest

from kiln.errors import InvalidState
from kiln.jobs.dag import (
    DepStatus,
    dependants,
    dependency_status,
    find_cycle,
    leaves,
    repair_set,
    run_if_verdict,
    run_result,
)
from kiln.jobs.states import LifeCycleState, ResultState, RunIf, termination_of, transition

S, F, C, X = DepStatus.SUCCEEDED, DepStatus.FAILED, DepStatus.CANCELED, DepStatus.EXCLUDED
R = ResultState
L = LifeCycleState


def test_find_cycle() -> None:
    assert find_cycle({"a": [], "b": ["a"], "c": ["a", "b"]}) is None
    cycle = find_cycle({"a": ["c"], "b": ["a"], "c": ["b"]})
    assert cycle is not None and cycle[0] == cycle[-1] and set(cycle) == {"a", "b", "c"}
    assert find_cycle({"a": ["a"]}) == ["a", "a"]
    # A long chain does not hit the recursion limit.
    chain = {f"t{i}": [f"t{i - 1}"] if i else [] for i in range(5000)}
    assert find_cycle(chain) is None


def test_dependants_and_leaves() -> None:
    graph = {"a": [], "b": ["a"], "c": ["b"], "d": ["a"], "e": []}
    assert dependants(graph, ["a"]) == {"b", "c", "d"}
    assert dependants(graph, ["c"]) == set()
    assert leaves(graph) == {"c", "d", "e"}


def test_dependency_status() -> None:
    assert dependency_status(L.TERMINATED, R.SUCCESS) == S
    assert dependency_status(L.TERMINATED, R.TIMEDOUT) == F
    assert dependency_status(L.SKIPPED, R.UPSTREAM_FAILED) == F
    assert dependency_status(L.TERMINATED, R.CANCELED) == C
    assert dependency_status(L.SKIPPED, R.UPSTREAM_CANCELED) == C
    assert dependency_status(L.SKIPPED, R.EXCLUDED) == X
    assert dependency_status(L.SKIPPED, R.DISABLED) == X
    assert dependency_status(L.INTERNAL_ERROR, R.FAILED) == F
    # A condition's branch: the outcome depends_on asks for, or excluded.
    assert dependency_status(L.TERMINATED, R.SUCCESS, "true", "true") == S
    assert dependency_status(L.TERMINATED, R.SUCCESS, "false", "true") == X


@pytest.mark.parametrize(
    ("run_if", "deps", "runs", "result"),
    [
        (RunIf.ALL_SUCCESS, [S, S], True, None),
        (RunIf.ALL_SUCCESS, [S, F], False, R.UPSTREAM_FAILED),
        (RunIf.ALL_SUCCESS, [S, C], False, R.UPSTREAM_CANCELED),
        (RunIf.ALL_SUCCESS, [S, X], True, None),
        (RunIf.AT_LEAST_ONE_SUCCESS, [S, F], True, None),
        (RunIf.AT_LEAST_ONE_SUCCESS, [F, F], False, R.UPSTREAM_FAILED),
        (RunIf.AT_LEAST_ONE_SUCCESS, [C, C], False, R.UPSTREAM_CANCELED),
        (RunIf.NONE_FAILED, [S, X], True, None),
        (RunIf.NONE_FAILED, [S, F], False, R.UPSTREAM_FAILED),
        (RunIf.ALL_DONE, [F, C], True, None),
        (RunIf.ALL_DONE, [S], True, None),
        (RunIf.AT_LEAST_ONE_FAILED, [S, F], True, None),
        (RunIf.AT_LEAST_ONE_FAILED, [S, C], True, None),
        (RunIf.AT_LEAST_ONE_FAILED, [S, S], False, R.EXCLUDED),
        (RunIf.ALL_FAILED, [F, F], True, None),
        (RunIf.ALL_FAILED, [F, S], False, R.EXCLUDED),
        # Every dependency excluded: excluded, whatever the run_if.
        (RunIf.ALL_DONE, [X, X], False, R.EXCLUDED),
        (RunIf.ALL_FAILED, [X], False, R.EXCLUDED),
    ],
)
def test_run_if(run_if: RunIf, deps: list[DepStatus], runs: bool, result: R | None) -> None:
    verdict = run_if_verdict(run_if, deps)
    assert verdict.run is runs
    assert verdict.result == result
    if not runs:
        assert verdict.message


def test_no_dependencies_always_run_and_default_is_all_success() -> None:
    assert run_if_verdict(RunIf.ALL_FAILED, []).run
    assert run_if_verdict(None, [F]).result == R.UPSTREAM_FAILED


def test_run_result_from_leaves() -> None:
    graph = {"a": [], "b": ["a"], "cleanup": ["b"]}
    ok = {"a": (L.TERMINATED, R.SUCCESS), "b": (L.TERMINATED, R.SUCCESS)}
    assert run_result(graph, {**ok, "cleanup": (L.TERMINATED, R.SUCCESS)})[0] == R.SUCCESS
    failed_middle = {
        "a": (L.TERMINATED, R.SUCCESS),
        "b": (L.TERMINATED, R.FAILED),
        "cleanup": (L.TERMINATED, R.SUCCESS),
    }
    assert run_result(graph, failed_middle)[0] == R.SUCCESS_WITH_FAILURES
    failed_leaf = {**ok, "cleanup": (L.TERMINATED, R.FAILED)}
    result, message = run_result(graph, failed_leaf)
    assert result == R.FAILED and "cleanup" in message
    assert run_result(graph, {**ok, "cleanup": (L.SKIPPED, R.UPSTREAM_CANCELED)})[0] == R.CANCELED
    assert run_result(graph, {**ok, "cleanup": (L.SKIPPED, R.EXCLUDED)})[0] == R.SUCCESS
    assert run_result(graph, {**ok, "cleanup": (L.INTERNAL_ERROR, R.FAILED)})[0] == R.FAILED


def test_repair_set() -> None:
    graph = {"a": [], "b": ["a"], "c": ["b"], "d": ["a"], "cleanup": ["c"]}
    results = {
        "a": (L.TERMINATED, R.SUCCESS),
        "b": (L.TERMINATED, R.FAILED),
        "c": (L.SKIPPED, R.UPSTREAM_FAILED),
        "d": (L.TERMINATED, R.SUCCESS),
        "cleanup": (L.TERMINATED, R.SUCCESS),
    }
    # The failed task and what did not succeed after it; not the unrelated or succeeded ones.
    assert repair_set(graph, results, ["b"], rerun_all_failed=False, rerun_dependent=False) == {
        "b",
        "c",
    }
    assert repair_set(graph, results, [], rerun_all_failed=True, rerun_dependent=False) == {
        "b",
        "c",
    }
    assert repair_set(graph, results, ["b"], rerun_all_failed=False, rerun_dependent=True) == {
        "b",
        "c",
        "cleanup",
    }


class Holder:
    def __init__(self, life: str) -> None:
        self.life_cycle_state = life
        self.result_state: str | None = None
        self.state_message = ""


def test_transitions() -> None:
    run = Holder("PENDING")
    transition(run, L.RUNNING)
    transition(run, L.TERMINATED, "done", R.SUCCESS)
    assert (run.life_cycle_state, run.result_state, run.state_message) == (
        "TERMINATED",
        "SUCCESS",
        "done",
    )
    # A repair brings an ended run back; its result goes.
    transition(run, L.PENDING)
    assert run.result_state is None
    with pytest.raises(InvalidState):
        transition(Holder("SKIPPED"), L.RUNNING)
    with pytest.raises(InvalidState):
        transition(Holder("RUNNING"), L.QUEUED)
    with pytest.raises(InvalidState):
        transition(Holder("BLOCKED"), L.RUNNING)


def test_termination_details() -> None:
    assert termination_of(L.TERMINATED, R.SUCCESS)[0].value == "SUCCESS"
    assert termination_of(L.TERMINATED, R.CANCELED, True)[0].value == "USER_CANCELED"
    assert termination_of(L.SKIPPED, R.UPSTREAM_FAILED)[0].value == "SKIPPED"
    assert termination_of(L.INTERNAL_ERROR, R.FAILED)[0].value == "INTERNAL_ERROR"
    assert termination_of(L.SKIPPED, R.MAXIMUM_CONCURRENT_RUNS_REACHED)[0].value == (
        "MAX_CONCURRENT_RUNS_EXCEEDED"
    )
    assert termination_of(L.TERMINATED, R.FAILED)[0].value == "RUN_EXECUTION_ERROR"
