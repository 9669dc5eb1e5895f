"""The planner: what a run does next from the state of its task runs (release, skip, launch,
retry, for_each concurrency, cancel, finish)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from kiln.jobs.planner import (
    Cancel,
    Evaluate,
    Expand,
    FinishForEach,
    FinishRun,
    Launch,
    Skip,
    plan,
)
from kiln.jobs.states import ResultState

NOW = datetime(2024, 1, 1, tzinfo=UTC)
_ids = itertools.count(1)


@dataclass
class Row:
    task_key: str
    spec: dict[str, Any]
    life_cycle_state: str = "PENDING"
    result_state: str | None = None
    executor: str | None = None
    retry_at: datetime | None = None
    condition_outcome: str | None = None
    cancel_requested: bool = False
    parent_task_run_id: int | None = None
    iteration: int | None = None
    run_id: int = field(default_factory=lambda: next(_ids))


def nb(key: str, deps: tuple[str, ...] = (), **extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"task_key": key, "notebook_task": {"notebook_path": "/x"}, **extra}
    if deps:
        spec["depends_on"] = [{"task_key": d} for d in deps]
    return spec


def graph(*rows: Row) -> dict[str, list[str]]:
    return {
        r.task_key: [d["task_key"] for d in r.spec.get("depends_on", [])]
        for r in rows
        if r.parent_task_run_id is None
    }


def kinds(actions: list[Any]) -> list[tuple[str, str]]:
    return [(type(a).__name__, a.row.task_key if hasattr(a, "row") else "") for a in actions]


def test_ready_tasks_launch_and_blocked_ones_wait() -> None:
    a = Row("a", nb("a"))
    b = Row("b", nb("b", ("a",)), life_cycle_state="BLOCKED")
    assert kinds(plan([a, b], graph(a, b), NOW)) == [("Launch", "a")]
    a.executor, a.life_cycle_state = "me", "RUNNING"
    assert plan([a, b], graph(a, b), NOW) == []
    a.life_cycle_state, a.result_state = "TERMINATED", "SUCCESS"
    assert kinds(plan([a, b], graph(a, b), NOW)) == [("Launch", "b")]


def test_upstream_failure_skips_and_the_run_fails_on_its_leaf() -> None:
    a = Row("a", nb("a"), life_cycle_state="TERMINATED", result_state="FAILED")
    b = Row("b", nb("b", ("a",)), life_cycle_state="BLOCKED")
    (skip,) = plan([a, b], graph(a, b), NOW)
    assert isinstance(skip, Skip) and skip.result == ResultState.UPSTREAM_FAILED
    b.life_cycle_state, b.result_state = "SKIPPED", "UPSTREAM_FAILED"
    (finish,) = plan([a, b], graph(a, b), NOW)
    assert isinstance(finish, FinishRun) and finish.result == ResultState.FAILED


def test_condition_branches() -> None:
    c = Row("c", {"task_key": "c", "condition_task": {"op": "EQUAL_TO", "left": "1", "right": "1"}})
    (evaluate,) = plan([c], graph(c), NOW)
    assert isinstance(evaluate, Evaluate)
    c.life_cycle_state, c.result_state, c.condition_outcome = "TERMINATED", "SUCCESS", "false"
    yes = Row("yes", {**nb("yes"), "depends_on": [{"task_key": "c", "outcome": "true"}]}, "BLOCKED")
    no = Row("no", {**nb("no"), "depends_on": [{"task_key": "c", "outcome": "false"}]}, "BLOCKED")
    actions = plan([c, yes, no], graph(c, yes, no), NOW)
    assert kinds(actions) == [("Skip", "yes"), ("Launch", "no")]
    assert isinstance(actions[0], Skip) and actions[0].result == ResultState.EXCLUDED


def test_disabled_tasks_are_skipped() -> None:
    a = Row("a", nb("a", disabled=True))
    (skip,) = plan([a], graph(a), NOW)
    assert isinstance(skip, Skip) and skip.result == ResultState.DISABLED


def test_retries_wait_for_their_time() -> None:
    a = Row("a", nb("a"), life_cycle_state="WAITING_FOR_RETRY", retry_at=NOW + timedelta(seconds=5))
    assert plan([a], graph(a), NOW) == []
    assert kinds(plan([a], graph(a), NOW + timedelta(seconds=5))) == [("Launch", "a")]


def test_for_each_respects_concurrency() -> None:
    inner = nb("inner")
    parent = Row(
        "each",
        {"task_key": "each", "for_each_task": {"inputs": "[]", "concurrency": 2, "task": inner}},
    )
    (expand,) = plan([parent], graph(parent), NOW)
    assert isinstance(expand, Expand)
    parent.life_cycle_state = "RUNNING"
    its = [
        Row("inner", inner, "QUEUED", parent_task_run_id=parent.run_id, iteration=i)
        for i in range(5)
    ]
    launched = plan([parent, *its], graph(parent), NOW)
    assert [a.row.iteration for a in launched if isinstance(a, Launch)] == [0, 1]
    for it in its[:2]:
        it.life_cycle_state, it.executor = "RUNNING", "me"
    assert plan([parent, *its], graph(parent), NOW) == []
    its[0].life_cycle_state, its[0].result_state = "TERMINATED", "SUCCESS"
    launched = plan([parent, *its], graph(parent), NOW)
    assert [a.row.iteration for a in launched if isinstance(a, Launch)] == [2]
    for it in its:
        it.life_cycle_state, it.result_state = "TERMINATED", "SUCCESS"
    its[3].result_state = "FAILED"
    (finish,) = plan([parent, *its], graph(parent), NOW)
    assert isinstance(finish, FinishForEach) and finish.result == ResultState.FAILED
    assert "1 of 5" in finish.message


def test_restart_resumes_running_attempts_without_an_executor() -> None:
    a = Row("a", nb("a"), life_cycle_state="RUNNING")
    (launch,) = plan([a], graph(a), NOW)
    assert isinstance(launch, Launch) and launch.resume


def test_cancel_of_the_run() -> None:
    running = Row("a", nb("a"), life_cycle_state="RUNNING", executor="me")
    waiting = Row("b", nb("b", ("a",)), life_cycle_state="BLOCKED")
    orphan = Row("c", nb("c"), life_cycle_state="RUNNING")
    rows = [running, waiting, orphan]
    actions = plan(rows, graph(*rows), NOW, cancel_message="The run was canceled.")
    assert kinds(actions) == [("Cancel", "a"), ("Skip", "b"), ("Launch", "c")]
    assert isinstance(actions[2], Launch) and actions[2].resume
    for row in rows:
        row.life_cycle_state, row.result_state = "TERMINATED", "CANCELED"
    (finish,) = plan(rows, graph(*rows), NOW, cancel_message="The run was canceled.")
    assert isinstance(finish, FinishRun) and finish.result == ResultState.CANCELED


def test_cancel_of_one_task_lets_cleanup_run() -> None:
    a = Row("a", nb("a"), life_cycle_state="RUNNING", executor="me", cancel_requested=True)
    cleanup = Row("cleanup", nb("cleanup", ("a",), run_if="ALL_DONE"), life_cycle_state="BLOCKED")
    (cancel,) = plan([a, cleanup], graph(a, cleanup), NOW)
    assert isinstance(cancel, Cancel)
    a.life_cycle_state, a.result_state = "TERMINATED", "CANCELED"
    assert kinds(plan([a, cleanup], graph(a, cleanup), NOW)) == [("Launch", "cleanup")]


def test_a_run_without_tasks_succeeds() -> None:
    (finish,) = plan([], {}, NOW)
    assert isinstance(finish, FinishRun) and finish.result == ResultState.SUCCESS
