"""Dynamic value references: `{{job.id}}`, `{{job.parameters.x}}`, `{{tasks.t.values.k}}`,
`{{input}}` ... in task parameters, condition operands and for-each inputs.

References are checked when a job is saved (an unknown namespace, or a task key the job does
not have, is a 400 naming the field) and resolved when a task starts (a value that does not
exist then fails the task, naming the reference). Values that are not strings are written as
JSON, so `{{tasks.prev.values.items}}` gives a for-each task its input array.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "REFERENCE",
    "ReferenceContext",
    "TaskFacts",
    "UnresolvedReference",
    "check_references",
    "has_references",
    "resolve",
]

REFERENCE = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
_TOP = {
    "job",
    "task",
    "tasks",
    "input",
    "workspace",
    # Databricks' older names, still accepted.
    "run_id",
    "parent_run_id",
    "job_id",
    "task_key",
    "start_date",
    "start_time",
    "task_retry_count",
}


class UnresolvedReference(ValueError):
    """A reference whose value does not exist when the task starts."""


def has_references(text: str) -> bool:
    """Whether `text` holds at least one `{{...}}` reference."""
    return REFERENCE.search(text) is not None


def check_references(text: str, task_keys: Iterable[str], *, in_for_each: bool) -> str | None:
    """Why a reference in `text` can never resolve (None when every one may)."""
    keys = set(task_keys)
    for match in REFERENCE.finditer(text):
        path = match.group(1)
        parts = path.split(".")
        if parts[0] not in _TOP:
            return f"unknown reference {{{{{path}}}}}"
        if parts[0] == "tasks":
            if len(parts) < 3:
                return f"incomplete reference {{{{{path}}}}} (use tasks.<task_key>.<field>)"
            if parts[1] not in keys:
                return f"reference {{{{{path}}}}} names task {parts[1]!r}, which the job lacks"
            if parts[2] == "values" and len(parts) != 4:
                return f"reference {{{{{path}}}}} must name one value: tasks.<task>.values.<key>"
        if parts[0] == "input" and not in_for_each:
            return f"{{{{{path}}}}} is only available in the task of a for_each_task"
        if parts[0] == "job" and len(parts) >= 2 and parts[1] == "parameters" and len(parts) != 3:
            return f"reference {{{{{path}}}}} must name one parameter: job.parameters.<name>"
    return None


@dataclass(frozen=True)
class TaskFacts:
    """What a finished task offers to references."""

    run_id: int
    result_state: str | None
    execution_count: int
    values: Mapping[str, Any] = field(default_factory=dict)
    error_code: str | None = None


@dataclass
class ReferenceContext:
    """What references resolve against when a task starts."""

    job_id: int | None
    job_name: str
    run_id: int
    start_time: datetime
    trigger_type: str
    repair_count: int = 0
    parameters: Mapping[str, str] = field(default_factory=dict)
    task_key: str = ""
    task_run_id: int = 0
    attempt: int = 0
    notebook_path: str = ""
    # Upstream tasks as far as the run has got: {task_key: {...}}.
    tasks: Mapping[str, TaskFacts] = field(default_factory=dict)
    # The for-each item of an iteration (a JSON value), or absent.
    has_input: bool = False
    input: Any = None
    workspace_id: str = "1"
    workspace_url: str = ""


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value)


def _time_field(moment: datetime, name: str, path: str) -> str:
    moment = moment.astimezone(UTC)
    values = {
        "iso_date": moment.date().isoformat(),
        "iso_datetime": moment.replace(tzinfo=None).isoformat(timespec="seconds"),
        "iso_weekday": str(moment.isoweekday()),
        "is_weekday": "true" if moment.isoweekday() <= 5 else "false",
        "timestamp_ms": str(int(moment.timestamp() * 1000)),
        "year": str(moment.year),
        "month": str(moment.month),
        "day": str(moment.day),
        "hour": str(moment.hour),
        "minute": str(moment.minute),
        "second": str(moment.second),
    }
    if name not in values:
        raise UnresolvedReference(f"Unknown time field in {{{{{path}}}}}.")
    return values[name]


def _lookup(path: str, ctx: ReferenceContext) -> str:
    parts = path.split(".")
    head, rest = parts[0], parts[1:]
    if head == "job":
        return _job(path, rest, ctx)
    if head == "task":
        simple = {
            "name": ctx.task_key,
            "run_id": str(ctx.task_run_id),
            "execution_count": str(ctx.attempt + 1),
            "notebook_path": ctx.notebook_path,
        }
        if len(rest) == 1 and rest[0] in simple:
            return simple[rest[0]]
    elif head == "tasks" and len(rest) >= 2:
        return _tasks(path, rest, ctx)
    elif head == "input":
        if not ctx.has_input:
            raise UnresolvedReference(f"{{{{{path}}}}} is only set in a for_each iteration.")
        value = ctx.input
        for key in rest:
            if not isinstance(value, dict) or key not in value:
                raise UnresolvedReference(f"The for_each input has no {key!r} for {{{{{path}}}}}.")
            value = value[key]
        return _text(value)
    elif head == "workspace" and rest in (["id"], ["url"]):
        return ctx.workspace_id if rest == ["id"] else ctx.workspace_url
    elif not rest:
        legacy = {
            "run_id": str(ctx.task_run_id or ctx.run_id),
            "parent_run_id": str(ctx.run_id),
            "job_id": "" if ctx.job_id is None else str(ctx.job_id),
            "task_key": ctx.task_key,
            "start_date": ctx.start_time.astimezone(UTC).date().isoformat(),
            "start_time": str(int(ctx.start_time.timestamp() * 1000)),
            "task_retry_count": str(ctx.attempt),
        }
        if head in legacy:
            return legacy[head]
    raise UnresolvedReference(f"Unknown reference {{{{{path}}}}}.")


def _job(path: str, rest: list[str], ctx: ReferenceContext) -> str:
    if rest == ["id"]:
        return "" if ctx.job_id is None else str(ctx.job_id)
    if rest == ["name"]:
        return ctx.job_name
    if rest == ["run_id"]:
        return str(ctx.run_id)
    if rest == ["repair_count"]:
        return str(ctx.repair_count)
    if rest == ["trigger", "type"]:
        return ctx.trigger_type
    if len(rest) == 2 and rest[0] == "start_time":
        return _time_field(ctx.start_time, rest[1], path)
    if len(rest) == 3 and rest[:2] == ["trigger", "time"]:
        return _time_field(ctx.start_time, rest[2], path)
    if len(rest) == 2 and rest[0] == "parameters":
        if rest[1] not in ctx.parameters:
            raise UnresolvedReference(f"The job has no parameter {rest[1]!r} for {{{{{path}}}}}.")
        return ctx.parameters[rest[1]]
    raise UnresolvedReference(f"Unknown reference {{{{{path}}}}}.")


def _tasks(path: str, rest: list[str], ctx: ReferenceContext) -> str:
    key, what = rest[0], rest[1]
    facts = ctx.tasks.get(key)
    if facts is None:
        raise UnresolvedReference(
            f"Task {key!r} has not run before this task, so {{{{{path}}}}} has no value "
            "(add it to depends_on)."
        )
    if what == "values" and len(rest) == 3:
        if rest[2] not in facts.values:
            raise UnresolvedReference(f"Task {key!r} set no value {rest[2]!r} ({{{{{path}}}}}).")
        return _text(facts.values[rest[2]])
    if len(rest) == 2:
        if what == "result_state":
            return (facts.result_state or "").lower()
        if what == "run_id":
            return str(facts.run_id)
        if what == "execution_count":
            return str(facts.execution_count)
        if what == "error_code":
            return facts.error_code or ""
    raise UnresolvedReference(f"Unknown reference {{{{{path}}}}}.")


def resolve(text: str, ctx: ReferenceContext) -> str:
    """`text` with every reference replaced; UnresolvedReference for one that has no value."""
    return REFERENCE.sub(lambda m: _lookup(m.group(1), ctx), text)
