"""What the catalog reads from (and writes to) a table's Delta log, through delta-rs.

The log is the truth for a table's data and columns; these helpers block (call them in a
thread) and import `deltalake` on first use so the server starts without it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from kiln.errors import InvalidParameterValue

__all__ = ["Column", "DeltaSnapshot", "create_empty", "has_log", "read_snapshot", "spark_type_text"]

# Delta primitive type -> (Unity Catalog ColumnTypeName, Spark SQL type text).
_PRIMITIVES: dict[str, tuple[str, str]] = {
    "string": ("STRING", "string"),
    "long": ("LONG", "bigint"),
    "integer": ("INT", "int"),
    "short": ("SHORT", "smallint"),
    "byte": ("BYTE", "tinyint"),
    "float": ("FLOAT", "float"),
    "double": ("DOUBLE", "double"),
    "boolean": ("BOOLEAN", "boolean"),
    "binary": ("BINARY", "binary"),
    "date": ("DATE", "date"),
    "timestamp": ("TIMESTAMP", "timestamp"),
    "timestamp_ntz": ("TIMESTAMP_NTZ", "timestamp_ntz"),
}
_TEXT_TO_DELTA = {text: name for name, (_, text) in _PRIMITIVES.items()} | {
    "integer": "integer",
    "long": "long",
    "short": "short",
    "byte": "byte",
}
_NAME_TO_DELTA = {type_name: name for name, (type_name, _) in _PRIMITIVES.items()}


@dataclass(frozen=True)
class Column:
    """One column as Unity Catalog describes it."""

    name: str
    type_name: str
    type_text: str
    type_json: str
    position: int
    nullable: bool
    partition_index: int | None
    comment: str | None


@dataclass(frozen=True)
class DeltaSnapshot:
    """A table's latest version and columns."""

    version: int
    columns: list[Column]
    partition_columns: list[str]


def spark_type_text(delta_type: Any) -> str:
    """Spark SQL's text for a Delta schema type (a name or a JSON object)."""
    if isinstance(delta_type, str):
        if delta_type in _PRIMITIVES:
            return _PRIMITIVES[delta_type][1]
        return delta_type  # decimal(p,s) and anything newer read as written
    kind = delta_type.get("type")
    if kind == "array":
        return f"array<{spark_type_text(delta_type['elementType'])}>"
    if kind == "map":
        key, value = delta_type["keyType"], delta_type["valueType"]
        return f"map<{spark_type_text(key)},{spark_type_text(value)}>"
    if kind == "struct":
        fields = ",".join(f"{f['name']}:{spark_type_text(f['type'])}" for f in delta_type["fields"])
        return f"struct<{fields}>"
    return str(kind)


def _type_name(delta_type: Any) -> str:
    if isinstance(delta_type, str):
        if delta_type in _PRIMITIVES:
            return _PRIMITIVES[delta_type][0]
        return "DECIMAL" if delta_type.startswith("decimal") else "USER_DEFINED_TYPE"
    return str(delta_type.get("type", "struct")).upper()


def has_log(url: str) -> bool:
    """Whether a Delta log exists at `url`."""
    from deltalake import DeltaTable

    return bool(DeltaTable.is_deltatable(url))


def read_snapshot(url: str) -> DeltaSnapshot:
    """The latest version, columns and partition columns of the table at `url`."""
    from deltalake import DeltaTable

    table = DeltaTable(url)
    schema = json.loads(table.schema().to_json())
    partitions = list(table.metadata().partition_columns)
    columns = [
        Column(
            name=field["name"],
            type_name=_type_name(field["type"]),
            type_text=spark_type_text(field["type"]),
            type_json=json.dumps(field),
            position=position,
            nullable=bool(field.get("nullable", True)),
            partition_index=partitions.index(field["name"])
            if field["name"] in partitions
            else None,
            comment=(field.get("metadata") or {}).get("comment"),
        )
        for position, field in enumerate(schema["fields"])
    ]
    return DeltaSnapshot(table.version(), columns, partitions)


def _delta_type(column: dict[str, Any]) -> Any:
    if column.get("type_json"):
        try:
            return json.loads(column["type_json"])["type"]
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidParameterValue(f"Invalid type_json of column {column['name']}") from exc
    text = str(column.get("type_text") or "").strip().lower()
    if text in _TEXT_TO_DELTA:
        return _TEXT_TO_DELTA[text]
    if text.startswith("decimal"):
        return text.replace(" ", "")
    name = str(column.get("type_name") or "").upper()
    if name in _NAME_TO_DELTA:
        return _NAME_TO_DELTA[name]
    raise InvalidParameterValue(
        f"Unsupported type of column {column.get('name')!r}: give type_json, or a primitive "
        "type_name/type_text."
    )


def create_empty(url: str, columns: list[dict[str, Any]], name: str) -> None:
    """Write version 0 of an empty Delta table with these (Unity Catalog shaped) columns."""
    from deltalake import DeltaTable, Schema

    if not columns:
        raise InvalidParameterValue("A new table needs at least one column.")
    seen: set[str] = set()
    fields = []
    ordered = sorted(columns, key=lambda c: (c.get("position") is None, c.get("position") or 0))
    for column in ordered:
        col_name = str(column.get("name") or "")
        if not col_name or col_name.lower() in seen:
            raise InvalidParameterValue(f"Missing or duplicate column name {col_name!r}.")
        seen.add(col_name.lower())
        fields.append(
            {
                "name": col_name,
                "type": _delta_type(column),
                "nullable": column.get("nullable", True) is not False,
                "metadata": {"comment": column["comment"]} if column.get("comment") else {},
            }
        )
    partitions = [
        str(c["name"])
        for c in sorted(
            (c for c in columns if c.get("partition_index") is not None),
            key=lambda c: int(c["partition_index"]),
        )
    ]
    try:
        schema = Schema.from_json(json.dumps({"type": "struct", "fields": fields}))
    except Exception as exc:
        raise InvalidParameterValue(f"Invalid columns: {exc}") from exc
    DeltaTable.create(url, schema, mode="error", partition_by=partitions or None, name=name)
