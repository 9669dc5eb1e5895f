"""Validation of job settings and one-time run submissions, before anything is stored.

Everything a client can get wrong here is a 400 INVALID_PARAMETER_VALUE naming the field, and
nothing is created: task keys (missing, malformed, duplicate), dependencies (unknown, on
itself, a cycle), run_if, more than 1000 tasks, task kinds (exactly one each; the ones Kiln
cannot run are refused by name), compute (exactly one of existing_cluster_id, new_cluster,
job_cluster_key for tasks that need a cluster; none for those that do not), for_each (a task,
no nested for_each, inputs a JSON array or a reference, concurrency 1-100), retries, timeouts,
parameters, references, schedules (Quartz cron and time zone) and webhooks. Tasks are
validated by `kiln.jobs.task_spec`; what needs the store (clusters, pools, jobs that exist) by
`kiln.jobs.checks`.

Jobs API 2.0's single-task shape (task fields at the top of the settings) is converted here
to one task, and the job keeps `format: SINGLE_TASK`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from kiln.jobs.cron import CronError, QuartzCron
from kiln.jobs.fields import array, bad, boolean, integer, obj, string, string_list, string_map
from kiln.jobs.states import PauseStatus
from kiln.jobs.task_spec import (
    CLUSTER_TASK_KINDS,
    MAX_CONCURRENCY,
    MAX_TASKS,
    TASK_KEY,
    TASK_KINDS,
    parse_tasks,
    task_kind,
    webhooks,
)

__all__ = [
    "CLUSTER_TASK_KINDS",
    "MAX_CONCURRENCY",
    "MAX_TASKS",
    "TASK_KINDS",
    "Refs",
    "merge_update",
    "parse_idempotency_token",
    "parse_job_settings",
    "parse_submit",
    "refs_of",
    "task_kind",
]

MAX_CONCURRENT_RUNS = 1000
MAX_TOKEN_LENGTH = 64
MAX_NAME_BYTES = 4096
MAX_TAGS = 25
MAX_PARAMETERS = 1000
_UNSUPPORTED_SETTINGS = {
    "continuous": "continuous jobs are not supported; use a schedule.",
    "trigger": "trigger (file arrival, table update, periodic) is not supported; use a schedule.",
    "triggers": "triggers are not supported; use a schedule.",
    "git_source": "git_source is not supported: tasks read notebooks and files from the "
    "workspace or DBFS.",
}
# Settings kept as sent: Kiln records them without acting on them.
_KEPT = (
    "description",
    "email_notifications",
    "notification_settings",
    "health",
    "run_as",
    "edit_mode",
    "budget_policy_id",
    "usage_policy_id",
    "deployment",
    "performance_target",
    "environments",
    "access_control_list",
    "parent_path",
)
_LEGACY_TASK_FIELDS = (
    "notebook_task",
    "spark_python_task",
    "python_wheel_task",
    "spark_jar_task",
    "spark_submit_task",
    "pipeline_task",
    "existing_cluster_id",
    "new_cluster",
    "libraries",
    "max_retries",
    "min_retry_interval_millis",
    "retry_on_timeout",
)
_PARAM_NAME = re.compile(r"^[\w\-.]{1,255}$")


def _job_clusters(raw: object) -> list[dict[str, Any]]:
    out = []
    keys: set[str] = set()
    for i, item in enumerate(array(raw, "job_clusters")):
        item = obj(item, f"job_clusters[{i}]")
        key = string(item.get("job_cluster_key"), f"job_clusters[{i}].job_cluster_key")
        if not TASK_KEY.match(key):
            raise bad(f"job_clusters[{i}].job_cluster_key", "1-100 letters, digits, '_' or '-'.")
        if key in keys:
            raise bad(f"job_clusters[{i}].job_cluster_key", f"duplicate key {key!r}.")
        keys.add(key)
        cluster = obj(item.get("new_cluster"), f"job_clusters[{i}].new_cluster")
        out.append({"job_cluster_key": key, "new_cluster": cluster})
    return out


def _schedule(raw: object) -> dict[str, Any]:
    spec = obj(raw, "schedule")
    expression = string(spec.get("quartz_cron_expression"), "schedule.quartz_cron_expression")
    timezone = spec.get("timezone_id", "UTC")
    try:
        cron = QuartzCron(expression, timezone)
    except CronError as exc:
        field_name = (
            "timezone_id" if str(exc).startswith("timezone_id") else "quartz_cron_expression"
        )
        raise bad(f"schedule.{field_name}", str(exc)) from None
    pause = spec.get("pause_status", PauseStatus.UNPAUSED.value)
    if pause not in {p.value for p in PauseStatus}:
        raise bad("schedule.pause_status", "must be PAUSED or UNPAUSED.")
    return {
        "quartz_cron_expression": cron.expression,
        "timezone_id": timezone,
        "pause_status": pause,
    }


def _parameters(raw: object) -> list[dict[str, str]]:
    items = array(raw, "parameters")
    if len(items) > MAX_PARAMETERS:
        raise bad("parameters", f"at most {MAX_PARAMETERS} job parameters.")
    out = []
    names: set[str] = set()
    for i, item in enumerate(items):
        item = obj(item, f"parameters[{i}]")
        name = string(item.get("name"), f"parameters[{i}].name")
        if not _PARAM_NAME.match(name):
            raise bad(f"parameters[{i}].name", "letters, digits, '_', '-' or '.' only.")
        if name in names:
            raise bad(f"parameters[{i}].name", f"duplicate parameter {name!r}.")
        names.add(name)
        default = item.get("default")
        if isinstance(default, bool) or not isinstance(default, str | int | float):
            raise bad(f"parameters[{i}].default", "every job parameter needs a string default.")
        out.append({"name": name, "default": default if isinstance(default, str) else str(default)})
    return out


def _legacy_task(raw: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """2.0's single-task settings as 2.1 settings (and whether it was 2.0's shape)."""
    if raw.get("tasks") is not None or not any(raw.get(k) is not None for k in _LEGACY_TASK_FIELDS):
        return raw, False
    name = raw.get("name") or raw.get("run_name") or ""
    key = re.sub(r"[^\w\-]", "_", str(name))[:100] or "main"
    task = {"task_key": key}
    rest = dict(raw)
    for name_ in _LEGACY_TASK_FIELDS:
        if name_ in rest:
            task[name_] = rest.pop(name_)
    rest["tasks"] = [task]
    return rest, True


def _common(raw: dict[str, Any], out: dict[str, Any]) -> None:
    for name, why in _UNSUPPORTED_SETTINGS.items():
        if raw.get(name) is not None:
            raise bad(name, why)
    job_clusters = _job_clusters(raw["job_clusters"]) if raw.get("job_clusters") else []
    if job_clusters:
        out["job_clusters"] = job_clusters
    out["tasks"] = parse_tasks(raw.get("tasks") or [], job_clusters)
    if raw.get("timeout_seconds") is not None:
        out["timeout_seconds"] = integer(raw["timeout_seconds"], "timeout_seconds", 0)
    if raw.get("webhook_notifications") is not None:
        out["webhook_notifications"] = webhooks(
            raw["webhook_notifications"], "webhook_notifications"
        )
    if raw.get("queue") is not None:
        queue = obj(raw["queue"], "queue")
        out["queue"] = {"enabled": boolean(queue.get("enabled", False), "queue.enabled")}
    for name in _KEPT:
        if raw.get(name) is not None:
            out[name] = raw[name]


def parse_job_settings(raw: object) -> dict[str, Any]:
    """Validated, normalized job settings (create, reset, and update after merging)."""
    spec, legacy = _legacy_task(obj(raw, "settings"))
    out: dict[str, Any] = {}
    name = spec.get("name", "Untitled")
    name = string(name, "name", required=False) or "Untitled"
    if len(name.encode()) > MAX_NAME_BYTES:
        raise bad("name", f"must be at most {MAX_NAME_BYTES} bytes.")
    out["name"] = name
    _common(spec, out)
    out["max_concurrent_runs"] = (
        integer(spec["max_concurrent_runs"], "max_concurrent_runs", 0, MAX_CONCURRENT_RUNS)
        if spec.get("max_concurrent_runs") is not None
        else 1
    )
    if spec.get("schedule") is not None:
        out["schedule"] = _schedule(spec["schedule"])
    if spec.get("parameters") is not None:
        out["parameters"] = _parameters(spec["parameters"])
    defined = {p["name"] for p in out.get("parameters", [])}
    for i, task in enumerate(out["tasks"]):
        for problem in _parameter_refs(task, defined):
            raise bad(f"tasks[{i}]", problem)
    if spec.get("tags") is not None:
        tags = string_map(spec["tags"], "tags")
        if len(tags) > MAX_TAGS:
            raise bad("tags", f"at most {MAX_TAGS} tags.")
        out["tags"] = tags
    out["format"] = "SINGLE_TASK" if legacy else "MULTI_TASK"
    return out


def _parameter_refs(task: dict[str, Any], defined: set[str]) -> list[str]:
    text = json.dumps(task)
    return [
        f"references job parameter {name!r}, which the job does not define."
        for name in re.findall(r"\{\{\s*job\.parameters\.([^{}\s]+)\s*\}\}", text)
        if name not in defined
    ]


def parse_submit(raw: object) -> dict[str, Any]:
    """A validated `runs/submit` body as the settings of its one-time run."""
    spec, legacy = _legacy_task(obj(raw, "request"))
    out: dict[str, Any] = {}
    run_name = spec.get("run_name")
    out["name"] = string(run_name, "run_name", required=False) if run_name else "Untitled"
    if not spec.get("tasks"):
        raise bad("tasks", "a submitted run needs at least one task.")
    _common(spec, out)
    out["format"] = "SINGLE_TASK" if legacy else "MULTI_TASK"
    return out


def parse_idempotency_token(raw: object) -> str | None:
    """A run's idempotency token (at most 64 characters), or None."""
    if raw is None:
        return None
    if not isinstance(raw, str) or not raw or len(raw) > MAX_TOKEN_LENGTH:
        raise bad("idempotency_token", f"must be a string of 1-{MAX_TOKEN_LENGTH} characters.")
    return raw


def merge_update(
    current: dict[str, Any], new_settings: object, fields_to_remove: object
) -> dict[str, Any]:
    """`jobs/update`: top-level fields replaced, `tasks` and `job_clusters` merged by key, and
    the fields (`schedule`, `tasks/<key>`, `job_clusters/<key>`) in fields_to_remove removed."""
    merged: dict[str, Any] = json.loads(json.dumps(current))
    if merged.get("format") == "SINGLE_TASK":
        merged.pop("format")
    changes = obj(new_settings, "new_settings") if new_settings is not None else {}
    for name, value in changes.items():
        if name in ("tasks", "job_clusters") and isinstance(value, list):
            key = "task_key" if name == "tasks" else "job_cluster_key"
            items = {item.get(key): item for item in merged.get(name, []) if isinstance(item, dict)}
            for item in value:
                if isinstance(item, dict):
                    items[item.get(key)] = item
            merged[name] = list(items.values())
        else:
            merged[name] = value
    removals = string_list(fields_to_remove, "fields_to_remove") if fields_to_remove else []
    for path in removals:
        head, _, key = path.partition("/")
        if key and head in ("tasks", "job_clusters"):
            name = "task_key" if head == "tasks" else "job_cluster_key"
            before = merged.get(head, [])
            merged[head] = [i for i in before if i.get(name) != key]
            if len(merged[head]) == len(before):
                raise bad("fields_to_remove", f"{head} has no {key!r}.")
        elif not key and head:
            merged.pop(head, None)
        else:
            raise bad("fields_to_remove", f"cannot remove {path!r}.")
    return merged


@dataclass
class Refs:
    """What job settings name in the store, each with the field that names it."""

    clusters: list[tuple[str, str]] = field(default_factory=list)
    new_clusters: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    jobs: list[tuple[str, int]] = field(default_factory=list)


def refs_of(settings: dict[str, Any]) -> Refs:
    """Clusters, cluster specs and jobs that validated settings refer to."""
    refs = Refs()
    for i, cluster in enumerate(settings.get("job_clusters", [])):
        refs.new_clusters.append((f"job_clusters[{i}].new_cluster", cluster["new_cluster"]))
    for i, task in enumerate(settings.get("tasks", [])):
        where = f"tasks[{i}]"
        inner = task.get("for_each_task", {}).get("task")
        for prefix, t in [(where, task)] + (
            [(f"{where}.for_each_task.task", inner)] if inner else []
        ):
            if t.get("existing_cluster_id"):
                refs.clusters.append((f"{prefix}.existing_cluster_id", t["existing_cluster_id"]))
            if t.get("new_cluster"):
                refs.new_clusters.append((f"{prefix}.new_cluster", t["new_cluster"]))
            if t.get("run_job_task"):
                refs.jobs.append((f"{prefix}.run_job_task.job_id", t["run_job_task"]["job_id"]))
    return refs
