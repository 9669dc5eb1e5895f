"""Validation of a job's tasks: keys, kinds, dependencies and run_if, compute, retries,
timeouts, references, for_each (a task, no nesting, inputs, concurrency) and webhooks. Every
refusal is a 400 naming the field by its full path (`tasks[2].depends_on[0].task_key`)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from kiln.jobs.dag import find_cycle
from kiln.jobs.fields import (
    array,
    bad,
    boolean,
    integer,
    obj,
    string,
    string_list,
    string_map,
)
from kiln.jobs.references import check_references, has_references
from kiln.jobs.states import ConditionTaskOp, RunIf

__all__ = [
    "CLUSTER_TASK_KINDS",
    "MAX_CONCURRENCY",
    "MAX_TASKS",
    "TASK_KEY",
    "TASK_KINDS",
    "parse_tasks",
    "task_kind",
    "webhooks",
]

MAX_TASKS = 1000
MAX_CONCURRENCY = 100
TASK_KINDS = (
    "notebook_task",
    "spark_python_task",
    "python_wheel_task",
    "run_job_task",
    "condition_task",
    "for_each_task",
)
CLUSTER_TASK_KINDS = frozenset({"notebook_task", "spark_python_task", "python_wheel_task"})
_UNSUPPORTED = {
    "sql_task": "sql_task needs a SQL warehouse, which Kiln does not have; run the SQL in a "
    "notebook_task (%sql cells) instead.",
    "spark_jar_task": "spark_jar_task is not supported: Kiln clusters run Python and SQL.",
    "spark_submit_task": "spark_submit_task is not supported; use spark_python_task.",
    "pipeline_task": "pipeline_task is not supported: Kiln has no Lakeflow pipelines.",
    "dbt_task": "dbt_task is not supported.",
    "dbt_cloud_task": "dbt_cloud_task is not supported.",
    "dbt_platform_task": "dbt_platform_task is not supported.",
    "dashboard_task": "dashboard_task is not supported.",
    "power_bi_task": "power_bi_task is not supported.",
    "alert_task": "alert_task is not supported.",
    "clean_rooms_notebook_task": "clean_rooms_notebook_task is not supported.",
    "gen_ai_compute_task": "gen_ai_compute_task is not supported.",
    "ai_runtime_task": "ai_runtime_task is not supported.",
    "python_operator_task": "python_operator_task is not supported.",
}
_TASK_KEPT = (
    "description",
    "email_notifications",
    "notification_settings",
    "health",
    "environment_key",
    "disable_auto_optimization",
)
# Jobs API 2.0: a job's single task lives at the top of its settings.
TASK_KEY = re.compile(r"^[\w\-]{1,100}$")
_WEBHOOK_EVENTS = (
    "on_start",
    "on_success",
    "on_failure",
    "on_duration_warning_threshold_exceeded",
    "on_streaming_backlog_exceeded",
)
_URL = re.compile(r"^https?://[^\s/]+(/[^\s]*)?$")


def task_kind(task: dict[str, Any]) -> str:
    """Which kind of task a validated task is (`notebook_task`, `for_each_task`, ...)."""
    for kind in TASK_KINDS:
        if kind in task:
            return kind
    raise ValueError("task without a kind")


@dataclass
class _Context:
    """What task validation needs to know about the whole job."""

    task_keys: set[str] = field(default_factory=set)
    job_cluster_keys: set[str] = field(default_factory=set)
    kinds: dict[str, str] = field(default_factory=dict)


def _check_text(text: str, where: str, ctx: _Context, *, in_for_each: bool) -> None:
    problem = check_references(text, ctx.task_keys, in_for_each=in_for_each)
    if problem:
        raise bad(where, problem + ".")


def _notebook_task(raw: object, where: str, ctx: _Context, in_for_each: bool) -> dict[str, Any]:
    spec = obj(raw, where)
    path = string(spec.get("notebook_path"), f"{where}.notebook_path")
    if spec.get("source", "WORKSPACE") != "WORKSPACE":
        raise bad(f"{where}.source", "only WORKSPACE notebooks are supported.")
    if spec.get("warehouse_id"):
        raise bad(f"{where}.warehouse_id", "Kiln has no SQL warehouses; run on a cluster.")
    if not path.startswith("/"):
        raise bad(f"{where}.notebook_path", "must be an absolute workspace path.")
    out: dict[str, Any] = {"notebook_path": path}
    if spec.get("base_parameters") is not None:
        params = string_map(spec["base_parameters"], f"{where}.base_parameters")
        for key, value in params.items():
            _check_text(value, f"{where}.base_parameters.{key}", ctx, in_for_each=in_for_each)
        out["base_parameters"] = params
    if "source" in spec:
        out["source"] = "WORKSPACE"
    return out


def _python_task(raw: object, where: str, ctx: _Context, in_for_each: bool) -> dict[str, Any]:
    spec = obj(raw, where)
    path = string(spec.get("python_file"), f"{where}.python_file")
    if spec.get("source", "WORKSPACE") != "WORKSPACE":
        raise bad(f"{where}.source", "only WORKSPACE and DBFS files are supported.")
    if not (path.startswith("/") or path.startswith("dbfs:/")):
        raise bad(
            f"{where}.python_file",
            "must be a workspace path (/Workspace/... or /Users/...) or a dbfs:/ path.",
        )
    out: dict[str, Any] = {"python_file": path}
    if spec.get("parameters") is not None:
        params = string_list(spec["parameters"], f"{where}.parameters")
        for i, value in enumerate(params):
            _check_text(value, f"{where}.parameters[{i}]", ctx, in_for_each=in_for_each)
        out["parameters"] = params
    if "source" in spec:
        out["source"] = spec["source"]
    return out


def _wheel_task(raw: object, where: str, ctx: _Context, in_for_each: bool) -> dict[str, Any]:
    spec = obj(raw, where)
    out: dict[str, Any] = {
        "package_name": string(spec.get("package_name"), f"{where}.package_name"),
        "entry_point": string(spec.get("entry_point"), f"{where}.entry_point"),
    }
    if spec.get("parameters") is not None and spec.get("named_parameters") is not None:
        raise bad(where, "set parameters or named_parameters, not both.")
    if spec.get("parameters") is not None:
        params = string_list(spec["parameters"], f"{where}.parameters")
        for i, value in enumerate(params):
            _check_text(value, f"{where}.parameters[{i}]", ctx, in_for_each=in_for_each)
        out["parameters"] = params
    if spec.get("named_parameters") is not None:
        named = string_map(spec["named_parameters"], f"{where}.named_parameters")
        for key, value in named.items():
            _check_text(value, f"{where}.named_parameters.{key}", ctx, in_for_each=in_for_each)
        out["named_parameters"] = named
    return out


def _run_job_task(raw: object, where: str, ctx: _Context, in_for_each: bool) -> dict[str, Any]:
    spec = obj(raw, where)
    out: dict[str, Any] = {"job_id": integer(spec.get("job_id"), f"{where}.job_id", 1)}
    for name in ("job_parameters", "notebook_params", "python_named_params", "sql_params"):
        if spec.get(name) is not None:
            params = string_map(spec[name], f"{where}.{name}")
            for key, value in params.items():
                _check_text(value, f"{where}.{name}.{key}", ctx, in_for_each=in_for_each)
            out[name] = params
    for name in ("python_params", "jar_params", "spark_submit_params", "dbt_commands"):
        if spec.get(name) is not None:
            out[name] = string_list(spec[name], f"{where}.{name}")
    return out


def _condition_task(raw: object, where: str, ctx: _Context, in_for_each: bool) -> dict[str, Any]:
    spec = obj(raw, where)
    op = spec.get("op")
    if op not in {o.value for o in ConditionTaskOp}:
        raise bad(f"{where}.op", f"must be one of {', '.join(o.value for o in ConditionTaskOp)}.")
    out: dict[str, Any] = {"op": op}
    for side in ("left", "right"):
        value = spec.get(side)
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise bad(f"{where}.{side}", "must be a string.")
        text = value if isinstance(value, str) else json.dumps(value)
        _check_text(text, f"{where}.{side}", ctx, in_for_each=in_for_each)
        out[side] = text
    return out


def _for_each_task(
    raw: object, where: str, ctx: _Context, in_for_each: bool, parent: dict[str, Any]
) -> dict[str, Any]:
    if in_for_each:
        raise bad(where, "a for_each_task cannot contain another for_each_task.")
    spec = obj(raw, where)
    inputs = spec.get("inputs")
    if isinstance(inputs, list):
        inputs = json.dumps(inputs)
    inputs = string(inputs, f"{where}.inputs")
    if has_references(inputs):
        _check_text(inputs, f"{where}.inputs", ctx, in_for_each=False)
    else:
        try:
            parsed = json.loads(inputs)
        except ValueError:
            parsed = None
        if not isinstance(parsed, list):
            raise bad(f"{where}.inputs", "must be a JSON array or a reference to one.")
    concurrency = 1
    if spec.get("concurrency") is not None:
        concurrency = integer(spec["concurrency"], f"{where}.concurrency", 1, MAX_CONCURRENCY)
    if spec.get("task") is None:
        raise bad(f"{where}.task", "a for_each_task needs the task to run for each input.")
    nested = obj(spec["task"], f"{where}.task")
    if nested.get("depends_on"):
        raise bad(f"{where}.task.depends_on", "the task of a for_each_task has no dependencies.")
    task = _task(nested, f"{where}.task", ctx, in_for_each=True)
    if task["task_key"] == parent.get("task_key"):
        raise bad(f"{where}.task.task_key", "must differ from the for_each task's own key.")
    return {"inputs": inputs, "concurrency": concurrency, "task": task}


def webhooks(raw: object, where: str) -> dict[str, list[dict[str, str]]]:
    """Webhook notifications: known events, at most 3 URLs each."""
    spec = obj(raw, where)
    out: dict[str, list[dict[str, str]]] = {}
    for event, hooks in spec.items():
        if event not in _WEBHOOK_EVENTS:
            raise bad(f"{where}.{event}", "unknown notification event.")
        items = array(hooks, f"{where}.{event}")
        if len(items) > 3:
            raise bad(f"{where}.{event}", "at most 3 webhooks per event.")
        parsed = []
        for i, hook in enumerate(items):
            hook_id = string(
                obj(hook, f"{where}.{event}[{i}]").get("id"), f"{where}.{event}[{i}].id"
            )
            if not _URL.match(hook_id):
                raise bad(
                    f"{where}.{event}[{i}].id",
                    "Kiln's webhook destinations are URLs (http:// or https://).",
                )
            parsed.append({"id": hook_id})
        out[event] = parsed
    return out


def _task(raw: dict[str, Any], where: str, ctx: _Context, *, in_for_each: bool) -> dict[str, Any]:
    key = raw.get("task_key")
    if not isinstance(key, str) or not TASK_KEY.match(key):
        raise bad(
            f"{where}.task_key",
            "is required: 1-100 letters, digits, '_' or '-'.",
        )
    for name, why in _UNSUPPORTED.items():
        if raw.get(name) is not None:
            raise bad(f"{where}.{name}", why)
    kinds = [k for k in TASK_KINDS if raw.get(k) is not None]
    if len(kinds) != 1:
        raise bad(
            where,
            f"task {key!r} must set exactly one of {', '.join(TASK_KINDS)}"
            + (f" (it sets {', '.join(kinds)})." if kinds else "."),
        )
    kind = kinds[0]
    out: dict[str, Any] = {"task_key": key}
    sub = f"{where}.{kind}"
    if kind == "notebook_task":
        out[kind] = _notebook_task(raw[kind], sub, ctx, in_for_each)
    elif kind == "spark_python_task":
        out[kind] = _python_task(raw[kind], sub, ctx, in_for_each)
    elif kind == "python_wheel_task":
        out[kind] = _wheel_task(raw[kind], sub, ctx, in_for_each)
    elif kind == "run_job_task":
        out[kind] = _run_job_task(raw[kind], sub, ctx, in_for_each)
    elif kind == "condition_task":
        out[kind] = _condition_task(raw[kind], sub, ctx, in_for_each)
    else:
        out[kind] = _for_each_task(raw[kind], sub, ctx, in_for_each, raw)
    _compute(raw, out, kind, where, ctx)
    if raw.get("libraries") is not None:
        from kiln.compute.libraries.spec import parse_libraries

        if kind not in CLUSTER_TASK_KINDS:
            raise bad(f"{where}.libraries", f"a {kind} installs no libraries.")
        parse_libraries(raw["libraries"], f"{where}.libraries")
        out["libraries"] = raw["libraries"]
    if raw.get("max_retries") is not None:
        out["max_retries"] = integer(raw["max_retries"], f"{where}.max_retries", -1)
    if raw.get("min_retry_interval_millis") is not None:
        out["min_retry_interval_millis"] = integer(
            raw["min_retry_interval_millis"], f"{where}.min_retry_interval_millis", 0
        )
    if raw.get("retry_on_timeout") is not None:
        out["retry_on_timeout"] = boolean(raw["retry_on_timeout"], f"{where}.retry_on_timeout")
    if raw.get("timeout_seconds") is not None:
        out["timeout_seconds"] = integer(raw["timeout_seconds"], f"{where}.timeout_seconds", 0)
    if raw.get("disabled") is not None:
        out["disabled"] = boolean(raw["disabled"], f"{where}.disabled")
    if raw.get("webhook_notifications") is not None:
        out["webhook_notifications"] = webhooks(
            raw["webhook_notifications"], f"{where}.webhook_notifications"
        )
    for name in _TASK_KEPT:
        if raw.get(name) is not None:
            out[name] = raw[name]
    return out


def _compute(
    raw: dict[str, Any], out: dict[str, Any], kind: str, where: str, ctx: _Context
) -> None:
    given = [k for k in ("existing_cluster_id", "new_cluster", "job_cluster_key") if raw.get(k)]
    if kind not in CLUSTER_TASK_KINDS:
        if given:
            raise bad(f"{where}.{given[0]}", f"a {kind} runs without a cluster.")
        return
    if len(given) != 1:
        raise bad(
            where,
            "One of job_cluster_key, new_cluster, or existing_cluster_id must be specified"
            + (" (only one)." if given else "."),
        )
    name = given[0]
    if name == "existing_cluster_id":
        out[name] = string(raw[name], f"{where}.{name}")
    elif name == "new_cluster":
        out[name] = obj(raw[name], f"{where}.{name}")
    else:
        key = string(raw[name], f"{where}.{name}")
        if key not in ctx.job_cluster_keys:
            raise bad(f"{where}.{name}", f"no job cluster has job_cluster_key {key!r}.")
        out[name] = key


def _dependencies(raw: dict[str, Any], out: dict[str, Any], where: str, ctx: _Context) -> None:
    deps = raw.get("depends_on")
    if deps is not None:
        parsed = []
        seen: set[str] = set()
        for j, dep in enumerate(array(deps, f"{where}.depends_on")):
            dep = obj(dep, f"{where}.depends_on[{j}]")
            key = string(dep.get("task_key"), f"{where}.depends_on[{j}].task_key")
            if key not in ctx.task_keys:
                raise bad(f"{where}.depends_on[{j}].task_key", f"unknown task {key!r}.")
            if key == out["task_key"]:
                raise bad(f"{where}.depends_on[{j}].task_key", "a task cannot depend on itself.")
            if key in seen:
                raise bad(f"{where}.depends_on[{j}].task_key", f"{key!r} is listed twice.")
            seen.add(key)
            item: dict[str, Any] = {"task_key": key}
            if dep.get("outcome") is not None:
                if ctx.kinds.get(key) != "condition_task":
                    raise bad(
                        f"{where}.depends_on[{j}].outcome",
                        f"only a dependency on a condition_task has an outcome ({key!r} is "
                        "not one).",
                    )
                if dep["outcome"] not in ("true", "false"):
                    raise bad(f"{where}.depends_on[{j}].outcome", "must be 'true' or 'false'.")
                item["outcome"] = dep["outcome"]
            parsed.append(item)
        if parsed:
            out["depends_on"] = parsed
    run_if = raw.get("run_if")
    if run_if is not None:
        if run_if not in {r.value for r in RunIf}:
            raise bad(f"{where}.run_if", f"must be one of {', '.join(r.value for r in RunIf)}.")
        out["run_if"] = run_if


def parse_tasks(raw_tasks: object, job_clusters: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A job's validated tasks (given its validated job clusters)."""
    items = array(raw_tasks, "tasks")
    if len(items) > MAX_TASKS:
        raise bad("tasks", f"a job has at most {MAX_TASKS} tasks (got {len(items)}).")
    ctx = _Context(job_cluster_keys={c["job_cluster_key"] for c in job_clusters})
    # Keys and kinds first: references and dependencies may name any task.
    for i, raw in enumerate(items):
        task = obj(raw, f"tasks[{i}]")
        key = task.get("task_key")
        if not isinstance(key, str) or not TASK_KEY.match(key):
            raise bad(f"tasks[{i}].task_key", "is required: 1-100 letters, digits, '_' or '-'.")
        if key in ctx.task_keys:
            raise bad(f"tasks[{i}].task_key", f"duplicate task key {key!r}.")
        ctx.task_keys.add(key)
        ctx.kinds[key] = next((k for k in TASK_KINDS if task.get(k) is not None), "")
    nested: dict[str, str] = {}
    for i, raw in enumerate(items):
        inner = (raw.get("for_each_task") or {}).get("task") if isinstance(raw, dict) else None
        if isinstance(inner, dict) and isinstance(inner.get("task_key"), str):
            if inner["task_key"] in ctx.task_keys or inner["task_key"] in nested:
                raise bad(
                    f"tasks[{i}].for_each_task.task.task_key",
                    f"duplicate task key {inner['task_key']!r}.",
                )
            nested[inner["task_key"]] = raw["task_key"]
    out = []
    for i, raw in enumerate(items):
        task = _task(raw, f"tasks[{i}]", ctx, in_for_each=False)
        _dependencies(raw, task, f"tasks[{i}]", ctx)
        out.append(task)
    cycle = find_cycle(
        {t["task_key"]: [d["task_key"] for d in t.get("depends_on", [])] for t in out}
    )
    if cycle:
        raise bad("tasks", f"the dependencies form a cycle: {' -> '.join(cycle)}.")
    return out
