"""`display`, `displayHTML` and the mime bundles behind them, as a Databricks user expects.

A Spark or pandas DataFrame (or a list of rows, dicts or named tuples) becomes a table: its
schema in Databricks' form (`{"name", "type": <JSON of the Spark type>, "metadata"}`) and the
first rows (1,000 by default), marked truncated when there were more; a matplotlib figure
becomes a PNG image; anything with an IPython-style `_repr_html_` / `_repr_png_` uses it;
everything else is its text.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import html
import io
import json
import math
import sys
from collections.abc import Callable, Iterable
from typing import Any

from kiln.driver.repl.outputs import TABLE_MIME, OutputLimits, display_data

__all__ = [
    "Displayer",
    "figure_png",
    "is_spark_dataframe",
    "json_value",
    "mime_bundle",
    "table_bundle",
]

Emit = Callable[[dict[str, Any]], None]


def json_value(value: Any) -> Any:
    """A cell value as JSON (dates as ISO text, decimals as text, bytes as base64)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode()
    as_dict = getattr(value, "asDict", None)  # a Spark Row (a struct)
    if callable(as_dict):
        return {str(k): json_value(v) for k, v in as_dict().items()}
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_value(v) for v in value]
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item):
        try:
            return json_value(item())
        except (TypeError, ValueError):
            pass
    if isinstance(value, Iterable):
        return [json_value(v) for v in value]
    return str(value)


def _field(name: str, type_json: Any, metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "type": json.dumps(type_json), "metadata": json.dumps(metadata or {})}


def is_spark_dataframe(obj: object) -> bool:
    """Whether `obj` is a Spark DataFrame, classic or Spark Connect (pyspark not imported here)."""
    module = sys.modules.get("pyspark.sql.dataframe")
    return module is not None and isinstance(obj, module.DataFrame)


def _is_pandas(obj: object) -> bool:
    module = sys.modules.get("pandas")
    return module is not None and isinstance(obj, module.DataFrame)


_PANDAS_TYPES = {"i": "long", "u": "long", "f": "double", "b": "boolean", "M": "timestamp"}


def _spark_rows(df: Any, limit: int) -> tuple[list[dict[str, Any]], list[list[Any]], bool]:
    if df.isStreaming:
        raise ValueError("display() of a streaming DataFrame is not supported by Kiln.")
    rows = df.limit(limit + 1).collect()
    schema = [_field(f.name, f.dataType.jsonValue(), f.metadata) for f in df.schema.fields]
    data = [[json_value(v) for v in row] for row in rows[:limit]]
    return schema, data, len(rows) > limit


def _pandas_rows(pdf: Any, limit: int) -> tuple[list[dict[str, Any]], list[list[Any]], bool]:
    schema = [
        _field(str(name), _PANDAS_TYPES.get(getattr(dtype, "kind", "O"), "string"))
        for name, dtype in pdf.dtypes.items()
    ]
    head = pdf.head(limit)
    data = [[json_value(v) for v in row] for row in head.itertuples(index=False, name=None)]
    return schema, data, len(pdf) > limit


def _records(items: list[Any], limit: int) -> tuple[list[dict[str, Any]], list[list[Any]], bool]:
    first = items[0]
    if hasattr(first, "asDict"):
        names = list(first.asDict().keys())
        rows = [list(r.asDict().values()) for r in items[:limit]]
    elif hasattr(first, "_fields"):
        names = list(first._fields)
        rows = [list(r) for r in items[:limit]]
    else:
        names = list(first.keys())
        rows = [[r.get(n) for n in names] for r in items[:limit]]
    types = {bool: "boolean", int: "long", float: "double"}
    schema = [
        _field(str(n), types.get(type(v), "string")) for n, v in zip(names, rows[0], strict=False)
    ]
    data = [[json_value(v) for v in row] for row in rows]
    return schema, data, len(items) > limit


def _table_of(obj: Any, limits: OutputLimits) -> tuple[list[Any], list[list[Any]], bool] | None:
    if is_spark_dataframe(obj):
        return _spark_rows(obj, limits.table_rows)
    if _is_pandas(obj):
        return _pandas_rows(obj, limits.table_rows)
    if isinstance(obj, list) and obj:
        first = obj[0]
        if hasattr(first, "asDict") or hasattr(first, "_fields") or isinstance(first, dict):
            return _records(obj, limits.table_rows)
    return None


def _html_table(schema: list[dict[str, Any]], data: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(f['name'])}</th>" for f in schema)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_text(v))}</td>" for v in row) + "</tr>" for row in data
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _text(value: Any) -> str:
    if value is None:
        return "null"
    return value if isinstance(value, str) else json.dumps(value)


def _plain_table(schema: list[dict[str, Any]], data: list[list[Any]], truncated: bool) -> str:
    header = [f["name"] for f in schema]
    cells = [[_text(v) for v in row] for row in data[:20]]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(header)]
    line = "+" + "+".join("-" * (w + 2) for w in widths) + "+"
    out = [line, "|" + "|".join(f" {h:<{w}} " for h, w in zip(header, widths, strict=True)) + "|"]
    out.append(line)
    out += [
        "|" + "|".join(f" {c:<{w}} " for c, w in zip(r, widths, strict=True)) + "|" for r in cells
    ]
    out.append(line)
    if len(data) > 20 or truncated:
        out.append(f"showing {min(len(data), 20)} of {len(data)}{'+' if truncated else ''} rows")
    return "\n".join(out)


def table_bundle(
    schema: list[dict[str, Any]], data: list[list[Any]], truncated: bool, limits: OutputLimits
) -> dict[str, Any]:
    """A table's mime bundle (Kiln's table JSON, HTML, plain text), within the byte limit."""
    size = 0
    for i, row in enumerate(data):
        size += len(json.dumps(row, default=str))
        if size > limits.table_bytes:
            data, truncated = data[:i], True
            break
    return {
        TABLE_MIME: {"schema": schema, "data": data, "truncated": truncated},
        "text/html": _html_table(schema, data),
        "text/plain": _plain_table(schema, data, truncated),
    }


def _is_figure(obj: object) -> bool:
    module = sys.modules.get("matplotlib.figure")
    return module is not None and isinstance(obj, module.Figure)


def figure_png(fig: Any) -> str:
    """A matplotlib figure as base64 PNG."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode()


def mime_bundle(obj: Any, limits: OutputLimits, *, tables: bool = True) -> dict[str, Any]:
    """The richest mime bundle Kiln can show for `obj` (rows as a table unless `tables` is
    False: the value of a last expression shows as itself, as in IPython)."""
    table = _table_of(obj, limits) if tables else None
    if table is not None:
        return table_bundle(*table, limits)
    if _is_figure(obj):
        return {"image/png": figure_png(obj), "text/plain": repr(obj)}
    bundle: dict[str, Any] = {"text/plain": obj if isinstance(obj, str) else repr(obj)}
    for mime, method in (("text/html", "_repr_html_"), ("image/png", "_repr_png_")):
        render = getattr(obj, method, None)
        if callable(render) and not isinstance(obj, type):
            try:
                value = render()
            except Exception:  # a broken repr must not fail the cell
                continue
            if isinstance(value, bytes):
                value = base64.b64encode(value).decode()
            if value is not None:
                bundle[mime] = value
    return bundle


class Displayer:
    """The `display` and `displayHTML` globals of one context."""

    def __init__(self, emit: Emit, limits: Callable[[], OutputLimits]) -> None:
        self._emit = emit
        self._limits = limits

    def display(self, *objs: Any, **options: Any) -> None:
        """Show a DataFrame as a table, a figure as an image, anything else as itself."""
        for obj in objs:
            self._emit(display_data(mime_bundle(obj, self._limits())))
            pyplot = sys.modules.get("matplotlib.pyplot")
            if pyplot is not None and _is_figure(obj):
                # Shown now: the end of the command must not show it again.
                pyplot.close(obj)

    def display_html(self, html_text: str) -> None:
        """Show HTML."""
        self._emit(display_data({"text/html": str(html_text), "text/plain": "<HTML>"}))
