"""Skipping files with Spark's pushed filters: exact on partition values, conservative on
min/max statistics (a file is kept unless its statistics prove no row can match)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from kiln.driver.delta.files import DataFile

__all__ = ["may_match"]

# Delta writers keep at most this many characters of a string statistic.
_TRUNCATED = 32


def _coerce(value: Any, like: Any) -> Any:
    # Statistics come back as Python values of the column's type, partition values as text
    # or typed; a filter's value is typed. Bring them to one type or give up (keep the file).
    if like is None or value is None or type(value) is type(like):
        return value
    if isinstance(like, bool):
        return str(value).lower() == "true"
    if isinstance(like, int):
        return int(value)
    if isinstance(like, float):
        return float(value)
    if isinstance(like, datetime):
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if isinstance(like, date):
        return date.fromisoformat(str(value)[:10])
    raise TypeError("a statistic of another type than the filter's value")


def _column(filter_: Any) -> str | None:
    attribute = getattr(filter_, "attribute", None)
    if not attribute or len(attribute) != 1:
        return None  # nested fields: no statistics used
    return str(attribute[0])


def _compare(kind: str, low: Any, high: Any, value: Any) -> bool:
    if kind == "EqualTo" or kind == "EqualNullSafe":
        return bool(low <= value <= high)
    if kind == "GreaterThan":
        return bool(high > value)
    if kind == "GreaterThanOrEqual":
        return bool(high >= value)
    if kind == "LessThan":
        return bool(low < value)
    if kind == "LessThanOrEqual":
        return bool(low <= value)
    return True


def may_match(data_file: DataFile, filter_: Any, partition_columns: Sequence[str]) -> bool:
    """Whether any row of the file may satisfy the filter."""
    try:
        return _may_match(data_file, filter_, partition_columns)
    except (TypeError, ValueError):
        return True


def _may_match(data_file: DataFile, filter_: Any, partition_columns: Sequence[str]) -> bool:
    kind = type(filter_).__name__
    if kind == "Not":
        child = filter_.child
        if type(child).__name__ in ("IsNull", "IsNotNull", "EqualTo") and _column(child) in (
            partition_columns
        ):
            return not _may_match(data_file, child, partition_columns)
        return True
    name = _column(filter_)
    if name is None:
        return True
    if name in partition_columns:
        current = data_file.partition_values.get(name)
        if kind == "IsNull":
            return current is None
        if kind == "IsNotNull":
            return current is not None
        if kind == "In":
            values = list(filter_.value)
            return current is not None and any(
                _coerce(current, v) == v for v in values if v is not None
            )
        if kind == "StringStartsWith":
            return current is not None and str(current).startswith(filter_.value)
        value = getattr(filter_, "value", None)
        if current is None or value is None:
            return kind == "EqualNullSafe" and current is None and value is None
        typed = _coerce(current, value)
        return _compare(kind, typed, typed, value)
    rows = data_file.num_records
    nulls = data_file.null_counts.get(name)
    if kind == "IsNull":
        return nulls is None or nulls > 0
    if kind == "IsNotNull":
        return rows is None or nulls is None or nulls < rows
    low, high = data_file.min_values.get(name), data_file.max_values.get(name)
    if isinstance(high, str) and len(high) >= _TRUNCATED:
        return True  # writers truncate long string statistics
    if low is None or high is None:
        # No statistics, or every value null: only an all-null file can be skipped.
        return not (rows is not None and nulls is not None and rows and nulls == rows)
    if kind == "In":
        values = [v for v in filter_.value if v is not None]
        return any(_compare("EqualTo", _coerce(low, v), _coerce(high, v), v) for v in values)
    if kind == "StringStartsWith":
        prefix = str(filter_.value)
        return str(low)[: len(prefix)] <= prefix <= str(high)[: len(prefix)]
    value = getattr(filter_, "value", None)
    if value is None or kind not in (
        "EqualTo",
        "EqualNullSafe",
        "GreaterThan",
        "GreaterThanOrEqual",
        "LessThan",
        "LessThanOrEqual",
    ):
        return True
    return _compare(kind, _coerce(low, value), _coerce(high, value), value)
