"""How the ML area's routes read a request: MLflow's mix of query parameters and JSON bodies."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request

from kiln.errors import InvalidParameterValue, MalformedRequest

__all__ = ["MAX_RESULTS", "max_results", "request_params", "tags"]

MAX_RESULTS = 1000


async def request_params(request: Request) -> dict[str, Any]:
    """Query parameters and JSON body merged: MLflow sends GETs as query, others as JSON."""
    params: dict[str, Any] = {}
    for key in request.query_params:
        values = request.query_params.getlist(key)
        params[key] = values if len(values) > 1 else values[0]
    raw = await request.body()
    if raw.strip():
        try:
            body = json.loads(raw)
        except ValueError:
            raise MalformedRequest("Request body is not valid JSON.") from None
        if not isinstance(body, dict):
            raise MalformedRequest("Request body must be a JSON object.")
        params.update(body)
    return params


def max_results(params: dict[str, Any]) -> int:
    """The request's `max_results` (default 100), or a 400 outside 1..MAX_RESULTS."""
    raw = params.get("max_results", 100)
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise InvalidParameterValue(f"Invalid max_results {raw!r}.") from None
    if not 1 <= value <= MAX_RESULTS:
        raise InvalidParameterValue(f"max_results must be between 1 and {MAX_RESULTS}.")
    return value


def tags(params: dict[str, Any]) -> list[dict[str, str]]:
    """The request's `tags`, a list of {key, value} objects, or a 400."""
    tags = params.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, dict) and "key" in t for t in tags):
        raise InvalidParameterValue("tags must be a list of {key, value} objects.")
    return tags
