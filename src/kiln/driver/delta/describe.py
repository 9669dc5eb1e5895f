"""DESCRIBE [EXTENDED | HISTORY | DETAIL] and SHOW results as DataFrames, from the catalog
API and the Delta log."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

__all__ = ["describe_frame", "detail_frame", "history_frame"]


def _ts(ms: Any) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(int(ms) / 1000, tz=UTC)


def _text_map(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in value.items()}


# Parameters delta-rs adds to the WRITE it records for a Kiln UPDATE, DELETE or MERGE.
_WRITE_PARAMETERS = ("mode", "partitionBy")


def _operation(commit: dict[str, Any]) -> tuple[Any, dict[str, str]]:
    """The commit's operation and parameters: Kiln's own (see dml_commit) where it wrote
    one, delta-rs' otherwise."""
    from kiln.driver.delta.dml_commit import KILN_OPERATION

    parameters = _text_map(commit.get("operationParameters"))
    kiln = commit.get(KILN_OPERATION)
    if not kiln:
        return commit.get("operation"), parameters
    return kiln, {k: v for k, v in parameters.items() if k not in _WRITE_PARAMETERS}


def history_frame(session: Any, table: Any, limit: int | None = None) -> Any:
    """The table's commits, newest first."""
    rows = []
    for h in table.history(limit):
        operation, parameters = _operation(h)
        rows.append(
            (
                int(h.get("version", 0)),
                _ts(h.get("timestamp")),
                h.get("userName"),
                operation,
                parameters,
                _text_map(h.get("operationMetrics")),
                h.get("engineInfo") or h.get("clientVersion"),
            )
        )
    rows.sort(key=lambda r: -r[0])
    schema = (
        "version bigint, timestamp timestamp, userName string, operation string, "
        "operationParameters map<string,string>, operationMetrics map<string,string>, "
        "engineInfo string"
    )
    return session.spark.createDataFrame(rows, schema)


def detail_frame(session: Any, table: Any, name: str | None) -> Any:
    """One row: format, location, size, files, partitioning and protocol of the table."""
    import pyarrow as pa

    metadata = table.metadata()
    actions = pa.table(table.get_add_actions(flatten=True))
    size = sum(actions.column("size_bytes").to_pylist()) if actions.num_rows else 0
    protocol = table.protocol()
    history = table.history(1)
    row = (
        "delta",
        metadata.id,
        name,
        metadata.description,
        table.table_uri,
        _ts(metadata.created_time),
        _ts(history[0].get("timestamp")) if history else None,
        list(metadata.partition_columns),
        int(actions.num_rows),
        int(size),
        {str(k): str(v) for k, v in (metadata.configuration or {}).items()},
        int(protocol.min_reader_version),
        int(protocol.min_writer_version),
    )
    schema = (
        "format string, id string, name string, description string, location string, "
        "createdAt timestamp, lastModified timestamp, partitionColumns array<string>, "
        "numFiles bigint, sizeInBytes bigint, properties map<string,string>, "
        "minReaderVersion int, minWriterVersion int"
    )
    return session.spark.createDataFrame([row], schema)


def describe_frame(session: Any, info: dict[str, Any], extended: bool) -> Any:
    """DESCRIBE TABLE [EXTENDED]: columns, partitioning and (extended) the table's details."""
    columns = list(info.get("columns") or [])
    rows: list[tuple[str, str, str | None]] = [
        (c["name"], c.get("type_text") or "", c.get("comment")) for c in columns
    ]
    partitions = sorted(
        (c for c in columns if c.get("partition_index") is not None),
        key=lambda c: c["partition_index"],
    )
    if partitions:
        rows += [("# Partition Information", "", ""), ("# col_name", "data_type", "comment")]
        rows += [(c["name"], c.get("type_text") or "", c.get("comment")) for c in partitions]
    if extended:
        rows += [
            ("", "", ""),
            ("# Detailed Table Information", "", ""),
            ("Catalog", info.get("catalog_name", ""), ""),
            ("Database", info.get("schema_name", ""), ""),
            ("Table", info.get("name", ""), ""),
            ("Owner", info.get("owner", ""), ""),
            ("Type", info.get("table_type", ""), ""),
            ("Location", info.get("storage_location", ""), ""),
            ("Provider", "delta", ""),
            ("Comment", info.get("comment") or "", ""),
        ]
    return session.spark.createDataFrame(rows, "col_name string, data_type string, comment string")
