"""Dynamic value references: resolving them when a task starts, checking them when a job is
saved; and resolving a task's settings (parameter push-down, overrides, conditions)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from kiln.jobs.references import (
    ReferenceContext,
    TaskFacts,
    UnresolvedReference,
    check_references,
    resolve,
)
from kiln.jobs.resolve import evaluate_condition, for_each_inputs, resolve_task


def context(**overrides: object) -> ReferenceContext:
    fields: dict[str, object] = {
        "job_id": 42,
        "job_name": "nightly",
        "run_id": 7,
        "start_time": datetime(2024, 5, 17, 9, 30, 5, tzinfo=UTC),
        "trigger_type": "PERIODIC",
        "parameters": {"env": "prod"},
        "task_key": "load",
        "task_run_id": 99,
        "attempt": 1,
        "tasks": {
            "prev": TaskFacts(
                run_id=11,
                result_state="SUCCESS",
                execution_count=1,
                values={"items": [1, 2, {"x": "y"}], "name": "abc", "n": 3},
            )
        },
        "workspace_url": "http://127.0.0.1:8080",
    }
    fields.update(overrides)
    return ReferenceContext(**fields)  # type: ignore[arg-type]


def test_job_task_and_workspace_references() -> None:
    ctx = context()
    assert resolve("{{job.id}}/{{ job.run_id }}/{{job.name}}", ctx) == "42/7/nightly"
    assert resolve("{{job.parameters.env}}", ctx) == "prod"
    assert resolve("{{job.trigger.type}} {{job.repair_count}}", ctx) == "PERIODIC 0"
    assert resolve("{{job.start_time.iso_date}} {{job.start_time.hour}}", ctx) == "2024-05-17 9"
    assert resolve("{{job.start_time.timestamp_ms}}", ctx) == "1715938205000"
    assert resolve("{{task.name}}:{{task.run_id}}:{{task.execution_count}}", ctx) == "load:99:2"
    assert resolve("{{workspace.url}} {{workspace.id}}", ctx) == "http://127.0.0.1:8080 1"
    assert resolve("{{run_id}} {{parent_run_id}} {{job_id}} {{task_key}}", ctx) == "99 7 42 load"
    assert resolve("no references here", ctx) == "no references here"


def test_task_values_and_states() -> None:
    ctx = context()
    assert resolve("{{tasks.prev.values.name}}", ctx) == "abc"
    assert resolve("{{tasks.prev.values.n}}", ctx) == "3"
    # Non-strings as JSON: a list becomes a for-each input array.
    assert resolve("{{tasks.prev.values.items}}", ctx) == '[1, 2, {"x": "y"}]'
    assert resolve("{{tasks.prev.result_state}}", ctx) == "success"
    assert resolve("{{tasks.prev.run_id}}", ctx) == "11"


def test_for_each_input() -> None:
    ctx = context(has_input=True, input={"city": "Oslo", "n": 2})
    assert resolve("{{input}}", ctx) == '{"city": "Oslo", "n": 2}'
    assert resolve("{{input.city}}", ctx) == "Oslo"
    assert resolve("{{input}}", context(has_input=True, input="plain")) == "plain"


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("{{tasks.prev.values.missing}}", "set no value"),
        ("{{tasks.other.values.x}}", "has not run"),
        ("{{job.parameters.nope}}", "no parameter"),
        ("{{input}}", "for_each"),
        ("{{nonsense.path}}", "Unknown reference"),
        ("{{job.start_time.decade}}", "Unknown time field"),
    ],
)
def test_unresolvable_references_say_why(text: str, why: str) -> None:
    with pytest.raises(UnresolvedReference, match=why):
        resolve(text, context())


def test_checks_when_saving() -> None:
    keys = ["a", "b"]
    assert check_references("{{tasks.a.values.x}} {{job.id}}", keys, in_for_each=False) is None
    assert "lacks" in (check_references("{{tasks.zz.values.x}}", keys, in_for_each=False) or "")
    assert "unknown" in (check_references("{{foo.bar}}", keys, in_for_each=False) or "")
    assert "for_each" in (check_references("{{input}}", keys, in_for_each=False) or "")
    assert check_references("{{input.x}}", keys, in_for_each=True) is None
    assert "one value" in (check_references("{{tasks.a.values}}", keys, in_for_each=False) or "")


def test_resolving_a_notebook_task_pushes_job_parameters_down() -> None:
    spec = {
        "task_key": "nb",
        "notebook_task": {
            "notebook_path": "/x",
            "base_parameters": {"env": "dev", "run": "{{job.run_id}}", "keep": "k"},
        },
    }
    resolved, values = resolve_task(spec, context(), {"notebook_params": {"keep": "override"}})
    params = resolved["notebook_task"]["base_parameters"]
    assert params == {"env": "prod", "run": "7", "keep": "override"}
    assert values == {"notebook_task": {"base_parameters": params}}
    # The stored spec is not changed.
    assert spec["notebook_task"]["base_parameters"]["env"] == "dev"  # type: ignore[index]


def test_resolving_python_wheel_condition_and_run_job_tasks() -> None:
    ctx = context()
    python = {
        "task_key": "p",
        "spark_python_task": {"python_file": "/f.py", "parameters": ["{{job.id}}"]},
    }
    assert resolve_task(python, ctx)[0]["spark_python_task"]["parameters"] == ["42"]
    assert resolve_task(python, ctx, {"python_params": ["a"]})[0]["spark_python_task"][
        "parameters"
    ] == ["a"]
    wheel = {
        "task_key": "w",
        "python_wheel_task": {
            "package_name": "p",
            "entry_point": "e",
            "named_parameters": {"k": "{{task.name}}"},
        },
    }
    assert resolve_task(wheel, ctx)[0]["python_wheel_task"]["named_parameters"] == {"k": "load"}
    cond = {
        "task_key": "c",
        "condition_task": {"op": "EQUAL_TO", "left": "{{tasks.prev.values.n}}", "right": "3"},
    }
    _, values = resolve_task(cond, ctx)
    assert values == {"condition_task": {"left": "3", "right": "3"}}
    run_job = {
        "task_key": "r",
        "run_job_task": {"job_id": 5, "job_parameters": {"x": "{{job.parameters.env}}"}},
    }
    assert resolve_task(run_job, ctx)[0]["run_job_task"]["job_parameters"] == {"x": "prod"}


def test_conditions() -> None:
    assert evaluate_condition("EQUAL_TO", "a", "a")
    assert not evaluate_condition("EQUAL_TO", "12.0", "12")  # text comparison
    assert evaluate_condition("NOT_EQUAL", "a", "b")
    assert evaluate_condition("GREATER_THAN_OR_EQUAL", "12.0", "12")  # numbers
    assert evaluate_condition("LESS_THAN", "9", "10")
    assert not evaluate_condition("GREATER_THAN", "9", "10")
    assert evaluate_condition("LESS_THAN_OR_EQUAL", "-1", "0")
    with pytest.raises(ValueError, match="left operand 'abc' is not a number"):
        evaluate_condition("GREATER_THAN", "abc", "1")


def test_for_each_inputs() -> None:
    assert for_each_inputs('[1, "a", {"b": 2}]') == [1, "a", {"b": 2}]
    for bad in ('{"a": 1}', "not json", "3"):
        with pytest.raises(ValueError, match="JSON array"):
            for_each_inputs(bad)
    with pytest.raises(ValueError, match="at most 5000"):
        for_each_inputs(str(list(range(5001))))
