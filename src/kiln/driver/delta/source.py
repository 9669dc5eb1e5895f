"""The `delta` Spark data source over delta-rs (Spark 4's Python Data Source API).

Reads: one Spark task per file group of the snapshot (time travel with `versionAsOf` /
`timestampAsOf`), files skipped with pushed filters on partition values and statistics,
only the requested columns read (a user-given schema prunes columns). Writes: executors
write Parquet files and return their add actions; the driver makes one commit to the log.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from pyspark.sql.datasource import (
    DataSource,
    DataSourceArrowWriter,
    DataSourceReader,
    InputPartition,
    WriterCommitMessage,
)
from pyspark.sql.types import StructType

from kiln.driver.delta.conflicts import check_overwrite, classify
from kiln.driver.delta.files import (
    GROUP_BYTES,
    DataFile,
    FileGroup,
    WrittenFile,
    group_files,
    open_table,
    plan_files,
    read_group,
    write_files,
)
from kiln.driver.delta.pruning import may_match

__all__ = [
    "DeltaDataSource",
    "DeltaReader",
    "DeltaWriter",
    "FilesWritten",
    "SchemaMismatch",
    "check_schema",
    "commit_files",
]

# The smallest file group worth a task of its own.
MIN_GROUP_BYTES = 4 * 1024 * 1024
# How often an append retries after another writer's commit got the same version first.
APPEND_RETRIES = 20


class SchemaMismatch(ValueError):
    """Written data does not match the table's schema (and mergeSchema is not set)."""


def _flag(options: Any, key: str) -> bool:
    return str(options.get(key, "false")).strip().lower() == "true"


def _split(value: str | None) -> list[str]:
    if not value:
        return []
    text = value.strip()
    if text.startswith("["):
        return [str(v) for v in json.loads(text)]
    return [p.strip() for p in text.split(",") if p.strip()]


def table_uri(options: Any) -> str:
    """The table's location from the options (`path`)."""
    path = options.get("path")
    if not path:
        raise ValueError("The delta source needs a path: spark.read.format('delta').load(path).")
    return str(path)


def _open(options: Any) -> Any:
    version = options.get("versionasof")
    timestamp = options.get("timestampasof")
    if version is not None and timestamp is not None:
        raise ValueError("Give versionAsOf or timestampAsOf, not both.")
    return open_table(
        table_uri(options),
        version=int(version) if version is not None else None,
        timestamp=str(timestamp) if timestamp is not None else None,
    )


def spark_schema(table: Any) -> StructType:
    """The Spark schema of a Delta table (Delta's schema JSON is Spark's)."""
    return StructType.fromJson(json.loads(table.schema().to_json()))


def check_schema(
    uri: str, current: StructType, incoming: StructType, *, merge_schema: bool
) -> None:
    """Raise SchemaMismatch when written columns differ in type from the table's, or are new
    and `mergeSchema` is off."""
    theirs = {f.name.lower(): f.dataType for f in current.fields}
    ours = {f.name.lower(): f.dataType for f in incoming.fields}
    differing = [n for n in ours if n in theirs and ours[n] != theirs[n]]
    added = [n for n in ours if n not in theirs]
    if differing or (added and not merge_schema):
        raise SchemaMismatch(
            f"A schema mismatch detected when writing to the Delta table ({uri}).\nTo enable "
            "schema migration using DataFrameWriter or DataStreamWriter, please set: "
            '\'.option("mergeSchema", "true")\'.\n'
            f"Table schema:\n{current.simpleString()}\nData schema:\n{incoming.simpleString()}"
            + (f"\nColumns of a different type: {differing}" if differing else "")
        )


class DeltaDataSource(DataSource):
    """`spark.read.format("delta")` / `df.write.format("delta")` on delta-rs."""

    @classmethod
    def name(cls) -> str:
        return "delta"

    def schema(self) -> StructType:
        return spark_schema(_open(self.options))

    def reader(self, schema: StructType) -> DeltaReader:
        return DeltaReader(self.options, schema)

    def writer(self, schema: StructType, overwrite: bool) -> DeltaWriter:
        return DeltaWriter(self.options, schema, overwrite)


class _Partition(InputPartition):
    def __init__(self, group: FileGroup) -> None:
        self.group = group


class DeltaReader(DataSourceReader):
    """Plans file groups on the driver; reads them as Arrow batches on the executors."""

    def __init__(self, options: Any, schema: StructType) -> None:
        table = _open(options)
        self.partition_columns: list[str] = list(table.metadata().partition_columns)
        self.files: list[DataFile] = plan_files(table)
        self.schema = schema
        self.filters: list[Any] = []

    def pushFilters(self, filters: list[Any]) -> Iterator[Any]:
        for filter_ in filters:
            self.filters.append(filter_)
            # Statistics only narrow the files: Spark still evaluates every filter on rows.
            yield filter_

    def selected_files(self) -> list[DataFile]:
        """The files left after pruning with the pushed filters."""
        return [
            f
            for f in self.files
            if all(may_match(f, flt, self.partition_columns) for flt in self.filters)
        ]

    def planned_bytes(self) -> int:
        """Bytes of the files this scan reads (the scan's input size)."""
        return sum(f.size for f in self.selected_files())

    def partitions(self) -> Sequence[InputPartition]:
        files = self.selected_files()
        # As Spark's file sources split: enough groups for every core, none over 128 MiB.
        total = sum(f.size for f in files)
        target = min(GROUP_BYTES, max(MIN_GROUP_BYTES, total // (os.cpu_count() or 1)))
        return [_Partition(group) for group in group_files(files, target)]

    def read(self, partition: InputPartition) -> Iterator[Any]:
        from pyspark.sql.pandas.types import to_arrow_schema

        assert isinstance(partition, _Partition)
        arrow_schema = to_arrow_schema(self.schema)
        yield from read_group(partition.group, arrow_schema, self.partition_columns)


@dataclass
class FilesWritten(WriterCommitMessage):
    """An executor's written files (their add actions)."""

    files: list[WrittenFile] = field(default_factory=list)


class DeltaWriter(DataSourceArrowWriter):
    """Parquet files written by the executors, committed once by the driver."""

    def __init__(self, options: Any, schema: StructType, overwrite: bool) -> None:
        from deltalake import DeltaTable

        self.uri = table_uri(options)
        self.schema = schema
        self.overwrite = overwrite
        self.merge_schema = _flag(options, "mergeschema")
        self.overwrite_schema = _flag(options, "overwriteschema")
        self.exists = bool(DeltaTable.is_deltatable(self.uri))
        # The version an overwrite replaces: rows committed after it make the commit conflict.
        self.read_version: int | None = None
        if self.exists:
            table = open_table(self.uri)
            self.read_version = int(table.version())
            self.partition_columns = list(table.metadata().partition_columns)
            self._check_schema(spark_schema(table))
        else:
            self.partition_columns = _split(options.get("partitionby"))
            missing = [c for c in self.partition_columns if c not in schema.fieldNames()]
            if missing:
                raise ValueError(f"Partition columns {missing} are not in the data's schema.")
        self.table_name = options.get("kiln.tablename")

    def _check_schema(self, current: StructType) -> None:
        if self.overwrite and self.overwrite_schema:
            return
        check_schema(self.uri, current, self.schema, merge_schema=self.merge_schema)

    def write(self, iterator: Iterator[Any]) -> FilesWritten:
        return FilesWritten(write_files(self.uri, iterator, self.partition_columns))

    def commit(self, messages: list[WriterCommitMessage | None]) -> None:
        files = [f for m in messages if isinstance(m, FilesWritten) for f in m.files]
        commit_files(
            self.uri,
            files,
            self.schema,
            overwrite=self.overwrite,
            partition_columns=self.partition_columns,
            merge_schema=self.merge_schema or (self.overwrite and self.overwrite_schema),
            name=self.table_name,
            read_version=self.read_version,
        )

    def abort(self, messages: list[WriterCommitMessage | None]) -> None:
        # Files of a failed write are never in the log; VACUUM removes them later.
        return None


def commit_files(
    uri: str,
    files: Sequence[WrittenFile],
    schema: StructType,
    *,
    overwrite: bool,
    partition_columns: Sequence[str],
    merge_schema: bool = False,
    name: str | None = None,
    read_version: int | None = None,
) -> None:
    """One commit adding the files (replacing every current file when overwriting; an
    overwrite of the table as read at `read_version` fails if rows were committed since)."""
    from deltalake import DeltaTable, Schema
    from deltalake.exceptions import CommitFailedError
    from deltalake.transaction import AddAction, RemoveAction, create_table_with_add_actions
    from pyspark.sql.pandas.types import to_arrow_schema

    arrow = to_arrow_schema(schema)
    adds = [
        AddAction(f.path, f.size, f.partition_values, f.modification_time, True, f.stats)
        for f in files
    ]
    actions: list[AddAction | RemoveAction] = list(adds)
    mode = "overwrite" if overwrite else "append"
    delta_schema = Schema.from_arrow(arrow)
    if not DeltaTable.is_deltatable(uri):
        try:
            create_table_with_add_actions(
                uri,
                delta_schema,
                adds,
                mode="error",
                partition_by=list(partition_columns) or None,
                name=name,
            )
            return
        except Exception:
            # Another writer created the table first: commit to it like any writer.
            if not DeltaTable.is_deltatable(uri):
                raise
    if merge_schema and not overwrite:
        _add_new_columns(DeltaTable(uri), arrow)
    for attempt in range(APPEND_RETRIES):
        table = DeltaTable(uri)
        target = delta_schema if overwrite and merge_schema else table.schema()
        if overwrite:
            check_overwrite(uri, table, read_version)
        try:
            table.create_write_transaction(
                actions, mode, target, partition_by=list(partition_columns) or None
            )
            return
        except CommitFailedError as exc:
            # Appends commute: retry on a newer version. Anything else is a real conflict.
            if overwrite or attempt == APPEND_RETRIES - 1:
                raise classify(uri, str(exc)) from exc
            time.sleep(0.05 * (attempt + 1))


def _add_new_columns(table: Any, arrow: Any) -> None:
    # delta-rs' transaction API keeps the table's schema on append, so mergeSchema adds the
    # new columns in a metadata commit of their own first.
    import pyarrow as pa
    from deltalake import Schema

    names = {f.name.lower() for f in table.schema().fields}
    # A column added to existing rows is null in them: nullable, as Delta requires.
    new = [f.with_nullable(True) for f in arrow if f.name.lower() not in names]
    if new:
        table.alter.add_columns(list(Schema.from_arrow(pa.schema(new)).fields))
