"""File-level work of the `delta` source: planning file groups from the log with pruning on
partition values and min/max statistics, reading files as Arrow batches, and writing Parquet
files with the statistics and partition values their add actions carry.

Everything here runs in Spark's Python workers (the driver's planner, the executors) and
imports pyarrow and deltalake on use.
"""

from __future__ import annotations

import json
import math
import os
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from urllib.parse import unquote

__all__ = [
    "GROUP_BYTES",
    "DataFile",
    "FileGroup",
    "WrittenFile",
    "data_file",
    "dictionary_columns",
    "file_stats",
    "group_files",
    "open_table",
    "plan_files",
    "read_group",
    "write_files",
]

# Rows per Arrow batch handed to Spark.
_BATCH_ROWS = 65536
# Files per Spark task are grouped up to this many bytes (Spark's maxPartitionBytes default).
GROUP_BYTES = 128 * 1024 * 1024
_UNSUPPORTED_FEATURES = {"deletionVectors", "columnMapping"}
# Rows of a column sampled to decide its Parquet encoding, and the share of distinct values
# up to which a dictionary pays.
_DICTIONARY_SAMPLE = 8192
_DICTIONARY_SHARE = 0.1


@dataclass
class DataFile:
    """One data file of a snapshot, with what the log says about it."""

    uri: str
    size: int
    partition_values: dict[str, Any]
    num_records: int | None = None
    min_values: dict[str, Any] = field(default_factory=dict)
    max_values: dict[str, Any] = field(default_factory=dict)
    null_counts: dict[str, Any] = field(default_factory=dict)


@dataclass
class FileGroup:
    """The files one Spark task reads."""

    files: list[DataFile]

    @property
    def size(self) -> int:
        """Bytes of the group's files."""
        return sum(f.size for f in self.files)


@dataclass
class WrittenFile:
    """What an executor wrote: the fields of a Delta add action."""

    path: str
    size: int
    partition_values: dict[str, str | None]
    modification_time: int
    stats: str


def open_table(uri: str, version: int | None = None, timestamp: str | None = None) -> Any:
    """The DeltaTable at `uri` as of a version or timestamp, refusing features it would misread."""
    from deltalake import DeltaTable

    table = DeltaTable(uri, version=version) if version is not None else DeltaTable(uri)
    if timestamp is not None:
        table.load_as_version(timestamp)
    protocol = table.protocol()
    features = set(protocol.reader_features or []) & _UNSUPPORTED_FEATURES
    if features:
        raise ValueError(
            f"The Delta table at {uri} uses {', '.join(sorted(features))}, which Kiln's reader "
            "does not support; rewrite it without them."
        )
    return table


def _absolute(table_uri: str, path: str) -> str:
    if "://" in path or path.startswith("/"):
        return path
    return f"{table_uri.rstrip('/')}/{unquote(path)}"


def plan_files(table: Any) -> list[DataFile]:
    """The snapshot's data files with their partition values and statistics."""
    import pyarrow as pa

    actions = pa.table(table.get_add_actions(flatten=False)).to_pylist()
    return [data_file(table.table_uri, a) for a in actions]


def data_file(table_uri: str, action: dict[str, Any]) -> DataFile:
    """One row of delta-rs' `get_add_actions(flatten=False)` as a planned file."""
    return DataFile(
        uri=_absolute(table_uri, action["path"]),
        size=int(action["size_bytes"]),
        partition_values=dict(action.get("partition") or {}),
        num_records=action.get("num_records"),
        min_values=dict(action.get("min") or {}),
        max_values=dict(action.get("max") or {}),
        null_counts=dict(action.get("null_count") or {}),
    )


def group_files(files: Sequence[DataFile], target: int = GROUP_BYTES) -> list[FileGroup]:
    """Files packed into groups of about `target` bytes (at least one group)."""
    groups: list[FileGroup] = []
    current: list[DataFile] = []
    size = 0
    for f in sorted(files, key=lambda f: f.uri):
        if current and size + f.size > target:
            groups.append(FileGroup(current))
            current, size = [], 0
        current.append(f)
        size += f.size
    if current or not groups:
        groups.append(FileGroup(current))
    return groups


def _filesystem(uri: str) -> tuple[Any, str]:
    from pyarrow import fs

    # Local paths are taken as they are: from_uri would decode a `%` in a file name again.
    if "://" not in uri or uri.startswith("file://"):
        return fs.LocalFileSystem(), uri.removeprefix("file://")
    filesystem, path = fs.FileSystem.from_uri(uri)
    return filesystem, path


def read_group(group: FileGroup, schema: Any, partition_columns: Sequence[str]) -> Iterator[Any]:
    """Record batches of a group's files in the Arrow `schema` (pruned columns only)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    wanted = [f.name for f in schema]
    data_columns = [n for n in wanted if n not in partition_columns]
    for data_file in group.files:
        filesystem, path = _filesystem(data_file.uri)
        with filesystem.open_input_file(path) as handle:
            parquet = pq.ParquetFile(handle)
            present = set(parquet.schema_arrow.names)
            columns = [c for c in data_columns if c in present]
            rows = parquet.metadata.num_rows
            # One multi-threaded read per file, then batches of it: faster than iterating.
            data = parquet.read(columns=columns) if columns else None
        if not rows:
            continue
        arrays = []
        for target in schema:
            if target.name in partition_columns:
                value = data_file.partition_values.get(target.name)
                arrays.append(pa.array([value] * rows).cast(target.type))
            elif data is not None and target.name in present:
                column = data.column(target.name)
                arrays.append(column if column.type == target.type else column.cast(target.type))
            else:  # a column added after this file was written
                arrays.append(pa.nulls(rows, target.type))
        table = pa.Table.from_arrays(arrays, schema=schema)
        yield from table.to_batches(max_chunksize=_BATCH_ROWS)


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (bool, int, float, str)):
        return value
    return None


def file_stats(table: Any) -> str:
    """Delta's per-file statistics (numRecords, minValues, maxValues, nullCount) as JSON."""
    import pyarrow as pa
    import pyarrow.compute as pc

    mins: dict[str, Any] = {}
    maxs: dict[str, Any] = {}
    nulls: dict[str, int] = {}
    for name in table.column_names:
        column = table.column(name)
        kind = column.type
        nulls[name] = int(column.null_count)
        if not (
            pa.types.is_integer(kind)
            or pa.types.is_floating(kind)
            or pa.types.is_string(kind)
            or pa.types.is_large_string(kind)
            or pa.types.is_date(kind)
            or pa.types.is_timestamp(kind)
            or pa.types.is_decimal(kind)
        ):
            continue
        if column.null_count == len(column):
            continue
        extremes = pc.min_max(column).as_py()
        low, high = _json_value(extremes["min"]), _json_value(extremes["max"])
        if pa.types.is_decimal(kind):
            low, high = float(extremes["min"]), float(extremes["max"])
        if low is not None and high is not None:
            mins[name], maxs[name] = low, high
    return json.dumps(
        {"numRecords": table.num_rows, "minValues": mins, "maxValues": maxs, "nullCount": nulls}
    )


def _partition_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    return str(value)


def dictionary_columns(table: Any) -> list[str]:
    """The top-level flat columns whose values repeat enough for dictionary encoding.

    Parquet writers start every column as a dictionary and fall back to plain pages once the
    dictionary outgrows its page; a chunk that mixes the two is the slowest kind for Spark's
    vectorized reader (a 10-million-row scan took twice as long as over plain pages). So the
    choice is made per file from a sample of the data: a dictionary where it will hold,
    plain pages from the start where it would not.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    chosen = []
    sample = table.slice(0, _DICTIONARY_SAMPLE)
    for name, column in zip(sample.column_names, sample.columns, strict=True):
        kind = column.type
        if pa.types.is_dictionary(kind):
            chosen.append(name)
        elif pa.types.is_nested(kind) or pa.types.is_boolean(kind) or pa.types.is_null(kind):
            continue
        elif len(column) and pc.count_distinct(column).as_py() <= len(column) * _DICTIONARY_SHARE:
            chosen.append(name)
    return chosen


def write_files(
    table_uri: str, batches: Iterator[Any], partition_columns: Sequence[str]
) -> list[WrittenFile]:
    """Write batches as Parquet files (one per partition value) under the table; their actions."""
    import time
    from urllib.parse import quote

    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    collected = [b for b in batches if b.num_rows]
    if not collected:
        return []
    data = pa.Table.from_batches(collected)
    if partition_columns:
        keys = data.select(list(partition_columns))
        combos = keys.group_by(list(partition_columns)).aggregate([]).to_pylist()
    else:
        combos = [{}]
    written: list[WrittenFile] = []
    task = uuid.uuid4()
    for index, combo in enumerate(combos):
        part = data
        for name, value in combo.items():
            mask = (
                pc.is_null(part.column(name))
                if value is None
                else pc.equal(part.column(name), value)
            )
            part = part.filter(mask)
        body = part.drop_columns(list(partition_columns)) if partition_columns else part
        values = {name: _partition_text(combo[name]) for name in partition_columns}
        folder = "/".join(
            f"{name}={'__HIVE_DEFAULT_PARTITION__' if v is None else quote(v, safe='')}"
            for name, v in values.items()
        )
        relative = f"{folder}/" if folder else ""
        relative += f"part-{index:05d}-{task}-c000.snappy.parquet"
        filesystem, base = _filesystem(table_uri)
        target = f"{base.rstrip('/')}/{relative}"
        filesystem.create_dir(os.path.dirname(target), recursive=True)
        with filesystem.open_output_stream(target) as out:
            pq.write_table(body, out, compression="snappy", use_dictionary=dictionary_columns(body))
        size = filesystem.get_file_info(target).size
        written.append(
            WrittenFile(
                path=relative,
                size=int(size),
                partition_values=values,
                modification_time=int(time.time() * 1000),
                stats=file_stats(body),
            )
        )
    return written
