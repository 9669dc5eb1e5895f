"""A task's settings with its references resolved, and the two tasks that take no time:
condition_task (compare two operands) and the start of a for_each task (its inputs)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from kiln.jobs.references import ReferenceContext, resolve
from kiln.jobs.spec import task_kind
from kiln.jobs.states import ConditionTaskOp

__all__ = ["MAX_ITERATIONS", "evaluate_condition", "for_each_inputs", "resolve_task"]

# Databricks allows up to 5000 for-each inputs... the same here, so a typo'd reference
# to a huge value fails clearly instead of creating millions of task runs.
MAX_ITERATIONS = 5000


def _map(values: Mapping[str, str], ctx: ReferenceContext) -> dict[str, str]:
    return {key: resolve(value, ctx) for key, value in values.items()}


def resolve_task(
    spec: dict[str, Any], ctx: ReferenceContext, overrides: Mapping[str, Any] | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The task's settings with every reference replaced, and Databricks' `resolved_values`.

    Job parameters are pushed down to notebook widgets (they win over base_parameters);
    run-now's legacy notebook_params, python_params and python_named_params win over the
    task's own. UnresolvedReference if a reference has no value."""
    overrides = overrides or {}
    out = json.loads(json.dumps(spec))
    kind = task_kind(spec)
    body = out[kind]
    resolved: dict[str, Any] = {}
    if kind == "notebook_task":
        params = _map(body.get("base_parameters", {}), ctx)
        params.update(overrides.get("notebook_params") or {})
        params.update(ctx.parameters)
        body["base_parameters"] = params
        resolved = {"base_parameters": params}
    elif kind == "spark_python_task":
        given = overrides.get("python_params")
        args = (
            [str(a) for a in given]
            if given is not None
            else [resolve(p, ctx) for p in body.get("parameters", [])]
        )
        body["parameters"] = args
        resolved = {"parameters": args}
    elif kind == "python_wheel_task":
        if overrides.get("python_named_params") is not None:
            body["named_parameters"] = dict(overrides["python_named_params"])
        elif "named_parameters" in body:
            body["named_parameters"] = _map(body["named_parameters"], ctx)
        if overrides.get("python_params") is not None:
            body["parameters"] = list(overrides["python_params"])
        elif "parameters" in body:
            body["parameters"] = [resolve(p, ctx) for p in body["parameters"]]
        resolved = {k: body[k] for k in ("parameters", "named_parameters") if k in body}
    elif kind == "run_job_task":
        for name in ("job_parameters", "notebook_params", "python_named_params", "sql_params"):
            if name in body:
                body[name] = _map(body[name], ctx)
                resolved[name] = body[name]
    elif kind == "condition_task":
        body["left"] = resolve(body["left"], ctx)
        body["right"] = resolve(body["right"], ctx)
        resolved = {"left": body["left"], "right": body["right"]}
    elif kind == "for_each_task":
        body["inputs"] = resolve(body["inputs"], ctx)
    return out, {kind: resolved} if resolved else {}


def evaluate_condition(op: str, left: str, right: str) -> bool:
    """A condition_task's outcome: `==`/`!=` compare text, the others compare numbers
    (ValueError naming the operand that is not a number)."""
    operation = ConditionTaskOp(op)
    if operation == ConditionTaskOp.EQUAL_TO:
        return left == right
    if operation == ConditionTaskOp.NOT_EQUAL:
        return left != right
    numbers = []
    for side, text in (("left", left), ("right", right)):
        try:
            numbers.append(float(text))
        except ValueError:
            raise ValueError(
                f"The condition's {side} operand {text!r} is not a number, which "
                f"{operation.value} needs."
            ) from None
        if numbers[-1] != numbers[-1]:
            raise ValueError(f"The condition's {side} operand is NaN.")
    a, b = numbers
    return {
        ConditionTaskOp.GREATER_THAN: a > b,
        ConditionTaskOp.GREATER_THAN_OR_EQUAL: a >= b,
        ConditionTaskOp.LESS_THAN: a < b,
        ConditionTaskOp.LESS_THAN_OR_EQUAL: a <= b,
    }[operation]


def for_each_inputs(text: str) -> list[Any]:
    """A for_each task's resolved inputs as a list (ValueError saying why not)."""
    try:
        inputs = json.loads(text)
    except ValueError:
        raise ValueError(f"The for_each inputs are not a JSON array: {text[:200]!r}") from None
    if not isinstance(inputs, list):
        raise ValueError(f"The for_each inputs are not a JSON array: {text[:200]!r}")
    if len(inputs) > MAX_ITERATIONS:
        raise ValueError(
            f"The for_each inputs have {len(inputs)} items; at most {MAX_ITERATIONS} are allowed."
        )
    return inputs
