"""Field parsers for request bodies: each refuses a bad value with a 400 naming the field by
its full path (`tasks[2].timeout_seconds`)."""

from __future__ import annotations

import json
import re
from typing import Any

from kiln.errors import InvalidParameterValue

__all__ = [
    "array",
    "bad",
    "boolean",
    "integer",
    "obj",
    "string",
    "string_list",
    "string_map",
]


def bad(where: str, why: str) -> InvalidParameterValue:
    """The 400 for a field."""
    return InvalidParameterValue(f"{where}: {why}" if where else why)


def obj(raw: object, where: str) -> dict[str, Any]:
    """An object."""
    if not isinstance(raw, dict):
        raise bad(where, "must be an object.")
    return raw


def array(raw: object, where: str) -> list[Any]:
    """An array."""
    if not isinstance(raw, list):
        raise bad(where, "must be an array.")
    return raw


def string(raw: object, where: str, *, required: bool = True) -> str:
    """A string (non-empty when required)."""
    if not isinstance(raw, str) or (required and not raw.strip()):
        raise bad(where, "must be a non-empty string." if required else "must be a string.")
    return raw


def integer(raw: object, where: str, low: int, high: int | None = None) -> int:
    """An integer (or its decimal text) within bounds."""
    if isinstance(raw, bool) or not isinstance(raw, int):
        if isinstance(raw, str) and re.fullmatch(r"-?\d+", raw.strip()):
            raw = int(raw)
        else:
            raise bad(where, "must be an integer.")
    if raw < low or (high is not None and raw > high):
        bound = f"between {low} and {high}" if high is not None else f">= {low}"
        raise bad(where, f"must be {bound} (got {raw}).")
    return raw


def boolean(raw: object, where: str) -> bool:
    """A boolean."""
    if not isinstance(raw, bool):
        raise bad(where, "must be true or false.")
    return raw


def string_map(raw: object, where: str) -> dict[str, str]:
    """An object of strings (numbers become their JSON text)."""
    mapping = obj(raw, where)
    out: dict[str, str] = {}
    for key, value in mapping.items():
        if not isinstance(key, str) or not key:
            raise bad(where, "keys must be non-empty strings.")
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise bad(f"{where}.{key}", "must be a string.")
        out[key] = value if isinstance(value, str) else json.dumps(value)
    return out


def string_list(raw: object, where: str) -> list[str]:
    """An array of strings."""
    items = array(raw, where)
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise bad(f"{where}[{i}]", "must be a string.")
    return list(items)
