"""Validation of job settings and submitted runs: every bad input is a 400 naming its field;
Jobs API 2.0's single-task shape converts; jobs/update merges by key."""

from __future__ import annotations

from typing import Any

import pytest

from kiln.errors import InvalidParameterValue
from kiln.jobs.spec import (
    merge_update,
    parse_idempotency_token,
    parse_job_settings,
    parse_submit,
    refs_of,
)

CLUSTER = {"existing_cluster_id": "c-1"}


def nb(key: str, params: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    notebook: dict[str, Any] = {"notebook_path": f"/nb/{key}"}
    if params is not None:
        notebook["base_parameters"] = params
    return {"task_key": key, "notebook_task": notebook, **CLUSTER, **extra}


def cond(key: str, **extra: Any) -> dict[str, Any]:
    return {
        "task_key": key,
        "condition_task": {"op": "EQUAL_TO", "left": "1", "right": "1"},
        **extra,
    }


def bad(settings: dict[str, Any], field: str) -> str:
    with pytest.raises(InvalidParameterValue) as info:
        parse_job_settings(settings)
    assert field in info.value.message, info.value.message
    return info.value.message


def test_a_valid_job_is_normalized() -> None:
    settings = parse_job_settings(
        {
            "name": "etl",
            "tasks": [
                nb("extract", {"n": 3}),
                cond("check", depends_on=[{"task_key": "extract"}]),
                nb(
                    "load", depends_on=[{"task_key": "check", "outcome": "true"}], run_if="ALL_DONE"
                ),
            ],
            "schedule": {"quartz_cron_expression": "0  0 * * * ?", "timezone_id": "Europe/Oslo"},
            "parameters": [{"name": "env", "default": "dev"}],
            "max_concurrent_runs": 3,
            "queue": {"enabled": True},
            "webhook_notifications": {"on_failure": [{"id": "https://hooks.example/x"}]},
        }
    )
    assert settings["format"] == "MULTI_TASK"
    assert settings["schedule"] == {
        "quartz_cron_expression": "0 0 * * * ?",
        "timezone_id": "Europe/Oslo",
        "pause_status": "UNPAUSED",
    }
    assert settings["tasks"][0]["notebook_task"]["base_parameters"] == {"n": "3"}
    assert settings["max_concurrent_runs"] == 3 and settings["queue"] == {"enabled": True}
    assert parse_job_settings({"tasks": [cond("a")]})["max_concurrent_runs"] == 1


def test_legacy_single_task_shape() -> None:
    settings = parse_job_settings(
        {
            "name": "old job",
            "existing_cluster_id": "c-1",
            "notebook_task": {"notebook_path": "/x"},
            "max_retries": 2,
            "timeout_seconds": 60,
        }
    )
    assert settings["format"] == "SINGLE_TASK"
    assert settings["timeout_seconds"] == 60
    (task,) = settings["tasks"]
    assert task["task_key"] == "old_job" and task["max_retries"] == 2
    assert task["existing_cluster_id"] == "c-1"


@pytest.mark.parametrize(
    ("tasks", "field"),
    [
        ([{"notebook_task": {"notebook_path": "/x"}, **CLUSTER}], "tasks[0].task_key"),
        ([cond("a"), cond("a")], "tasks[1].task_key: duplicate"),
        ([cond("bad key!")], "tasks[0].task_key"),
        ([cond("a", depends_on=[{"task_key": "nope"}])], "tasks[0].depends_on[0].task_key"),
        ([cond("a", depends_on=[{"task_key": "a"}])], "depend on itself"),
        (
            [cond("a", depends_on=[{"task_key": "b"}]), cond("b", depends_on=[{"task_key": "a"}])],
            "cycle",
        ),
        ([cond("a", run_if="SOMETIMES")], "tasks[0].run_if"),
        ([cond("a"), cond("b", depends_on=[{"task_key": "a", "outcome": "maybe"}])], "outcome"),
        ([nb("a"), cond("b", depends_on=[{"task_key": "a", "outcome": "true"}])], "outcome"),
        ([{"task_key": "a"}], "exactly one of"),
        ([{**nb("a"), **cond("a")}], "exactly one of"),
        ([{"task_key": "a", "notebook_task": {"notebook_path": "/x"}}], "must be specified"),
        ([{**nb("a"), "new_cluster": {"spark_version": "x"}}], "only one"),
        ([{**cond("a"), **CLUSTER}], "tasks[0].existing_cluster_id"),
        ([{"task_key": "a", "sql_task": {}}], "tasks[0].sql_task"),
        ([{"task_key": "a", "spark_jar_task": {}}], "tasks[0].spark_jar_task"),
        ([{**nb("a"), "job_cluster_key": "k", "existing_cluster_id": None}], "job_cluster_key"),
        ([nb("a", max_retries=-2)], "tasks[0].max_retries"),
        ([nb("a", timeout_seconds="soon")], "tasks[0].timeout_seconds"),
        ([nb("a", min_retry_interval_millis=-1)], "min_retry_interval_millis"),
        (
            [{"task_key": "a", "notebook_task": {"notebook_path": "relative"}, **CLUSTER}],
            "notebook_path",
        ),
        (
            [{"task_key": "a", "notebook_task": {}, **CLUSTER}],
            "tasks[0].notebook_task.notebook_path",
        ),
        ([{"task_key": "a", "condition_task": {"op": "LIKE", "left": "a", "right": "b"}}], "op"),
        ([{"task_key": "a", "run_job_task": {"job_id": "x"}}], "tasks[0].run_job_task.job_id"),
        (
            [
                cond("a"),
                {
                    "task_key": "b",
                    "condition_task": {
                        "op": "EQUAL_TO",
                        "left": "{{tasks.zz.values.x}}",
                        "right": "1",
                    },
                },
            ],
            "tasks[1].condition_task.left",
        ),
        ([nb("a", {"p": "{{job.parameters.undefined}}"})], "undefined"),
        ([nb("a", webhook_notifications={"on_start": [{"id": "not-a-url"}]})], "on_start[0].id"),
        (
            [{"task_key": "a", "spark_python_task": {"python_file": "s3://b/f.py"}, **CLUSTER}],
            "python_file",
        ),
        ([{"task_key": "a", "python_wheel_task": {"package_name": "p"}, **CLUSTER}], "entry_point"),
    ],
)
def test_bad_tasks_name_the_field(tasks: list[dict[str, Any]], field: str) -> None:
    bad({"tasks": tasks}, field)


def for_each(key: str, task: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"task_key": key, "for_each_task": {"inputs": "[1,2]", "task": task, **extra}}


@pytest.mark.parametrize(
    ("task", "field"),
    [
        ({"task_key": "f", "for_each_task": {"inputs": "[1]"}}, "for_each_task.task"),
        (for_each("f", for_each("g", cond("h"))), "another for_each_task"),
        (for_each("f", cond("h"), concurrency=101), "concurrency"),
        (for_each("f", cond("h"), concurrency=0), "concurrency"),
        ({"task_key": "f", "for_each_task": {"inputs": "{not json", "task": cond("h")}}, "inputs"),
        ({"task_key": "f", "for_each_task": {"inputs": '{"a": 1}', "task": cond("h")}}, "inputs"),
        (for_each("f", cond("f")), "task_key"),
        (for_each("f", {**cond("h"), "depends_on": [{"task_key": "f"}]}), "dependencies"),
        (
            for_each("f", {"task_key": "h", "notebook_task": {"notebook_path": "/x"}}),
            "must be specified",
        ),
    ],
)
def test_bad_for_each_tasks(task: dict[str, Any], field: str) -> None:
    bad({"tasks": [task]}, field)


def test_for_each_inputs_may_be_a_reference_and_see_input() -> None:
    settings = parse_job_settings(
        {
            "tasks": [
                cond("gen"),
                for_each(
                    "each",
                    {
                        **nb("work"),
                        "notebook_task": {
                            "notebook_path": "/w",
                            "base_parameters": {"i": "{{input}}"},
                        },
                    },
                    depends_on=[{"task_key": "gen"}],
                ),
            ]
        }
    )
    assert settings["tasks"][1]["for_each_task"]["concurrency"] == 1
    settings = parse_job_settings(
        {
            "tasks": [
                cond("gen"),
                {
                    "task_key": "each",
                    "depends_on": [{"task_key": "gen"}],
                    "for_each_task": {
                        "inputs": "{{tasks.gen.values.items}}",
                        "concurrency": 4,
                        "task": cond("inner"),
                    },
                },
            ]
        }
    )
    assert settings["tasks"][1]["for_each_task"]["inputs"] == "{{tasks.gen.values.items}}"
    # A nested task's key must be unique in the whole job.
    bad({"tasks": [cond("x"), for_each("f", cond("x"))]}, "duplicate")


def test_too_many_tasks() -> None:
    tasks = [cond(f"t{i}") for i in range(1001)]
    bad({"tasks": tasks}, "at most 1000 tasks")
    assert len(parse_job_settings({"tasks": tasks[:1000]})["tasks"]) == 1000


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"schedule": {"quartz_cron_expression": "0 0 * * *"}}, "schedule.quartz_cron_expression"),
        (
            {"schedule": {"quartz_cron_expression": "0 0 0 * * *"}},
            "schedule.quartz_cron_expression",
        ),
        (
            {"schedule": {"quartz_cron_expression": "0 0 0 * * ?", "timezone_id": "Mars/Base"}},
            "schedule.timezone_id",
        ),
        (
            {"schedule": {"quartz_cron_expression": "0 0 0 * * ?", "pause_status": "OFF"}},
            "schedule.pause_status",
        ),
        ({"max_concurrent_runs": 1001}, "max_concurrent_runs"),
        ({"max_concurrent_runs": -1}, "max_concurrent_runs"),
        ({"timeout_seconds": -5}, "timeout_seconds"),
        (
            {"parameters": [{"name": "a", "default": "1"}, {"name": "a", "default": "2"}]},
            "parameters[1].name",
        ),
        ({"parameters": [{"name": "a"}]}, "parameters[0].default"),
        ({"job_clusters": [{"job_cluster_key": "k"}]}, "job_clusters[0].new_cluster"),
        (
            {
                "job_clusters": [
                    {"job_cluster_key": "k", "new_cluster": {}},
                    {"job_cluster_key": "k", "new_cluster": {}},
                ]
            },
            "job_clusters[1].job_cluster_key",
        ),
        ({"continuous": {"pause_status": "UNPAUSED"}}, "continuous"),
        ({"git_source": {"git_url": "x"}}, "git_source"),
        ({"tags": {str(i): "v" for i in range(26)}}, "tags"),
        ({"queue": {"enabled": "yes"}}, "queue.enabled"),
        ({"tasks": "not a list"}, "tasks"),
    ],
)
def test_bad_settings_name_the_field(settings: dict[str, Any], field: str) -> None:
    bad({"tasks": [cond("a")], **settings} if "tasks" not in settings else settings, field)


def test_submit() -> None:
    spec = parse_submit({"run_name": "once", "tasks": [cond("a")]})
    assert spec["name"] == "once" and spec["format"] == "MULTI_TASK"
    legacy = parse_submit(
        {"run_name": "x", "existing_cluster_id": "c", "notebook_task": {"notebook_path": "/n"}}
    )
    assert legacy["format"] == "SINGLE_TASK" and legacy["tasks"][0]["task_key"] == "x"
    with pytest.raises(InvalidParameterValue, match="tasks"):
        parse_submit({"run_name": "empty"})


def test_idempotency_tokens() -> None:
    assert parse_idempotency_token(None) is None
    assert parse_idempotency_token("a" * 64) == "a" * 64
    for bad_token in ("", "a" * 65, 12):
        with pytest.raises(InvalidParameterValue, match="idempotency_token"):
            parse_idempotency_token(bad_token)


def test_update_merges_tasks_by_key_and_removes_fields() -> None:
    current = parse_job_settings(
        {
            "name": "j",
            "tasks": [cond("a"), cond("b")],
            "schedule": {"quartz_cron_expression": "0 0 0 * * ?"},
        }
    )
    merged = merge_update(
        current,
        {"name": "j2", "tasks": [{**cond("b"), "description": "new"}, cond("c")]},
        ["schedule", "tasks/a"],
    )
    assert merged["name"] == "j2" and "schedule" not in merged
    assert [t["task_key"] for t in merged["tasks"]] == ["b", "c"]
    assert merged["tasks"][0]["description"] == "new"
    with pytest.raises(InvalidParameterValue, match="fields_to_remove"):
        merge_update(current, None, ["tasks/zz"])


def test_refs() -> None:
    settings = parse_job_settings(
        {
            "tasks": [
                nb("a"),
                {"task_key": "b", "run_job_task": {"job_id": 5}},
                for_each("f", {**nb("inner"), "existing_cluster_id": "c-2"}),
                {
                    "task_key": "n",
                    "notebook_task": {"notebook_path": "/x"},
                    "new_cluster": {"spark_version": "v"},
                },
            ]
        }
    )
    refs = refs_of(settings)
    assert refs.clusters == [
        ("tasks[0].existing_cluster_id", "c-1"),
        ("tasks[2].for_each_task.task.existing_cluster_id", "c-2"),
    ]
    assert refs.jobs == [("tasks[1].run_job_task.job_id", 5)]
    assert refs.new_clusters == [("tasks[3].new_cluster", {"spark_version": "v"})]
