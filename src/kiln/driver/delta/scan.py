"""Reads of a Delta snapshot with Spark's own vectorized Parquet reader.

delta-rs plans the snapshot on the driver (the log's add actions: which files, with which
partition values); Spark's Parquet source reads them on the executors, with column pruning,
filter pushdown to Parquet row groups and the input metrics every Spark scan has. Partition
values, which Delta keeps in the log and not in the files, become literal columns of each
partition's scan. The `delta` Python source remains for what this path does not take: a
user-given read schema, or more partitions than one plan should union.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kiln.driver.delta.files import DataFile, open_table, plan_files

__all__ = ["MAX_PARTITION_SCANS", "native_scan", "scan_files", "sql_literal"]

# Past this many distinct partition values a table is read by the Python source, whose one
# scan carries them all, rather than by a union of that many Parquet scans.
MAX_PARTITION_SCANS = 256
# Spark lists more than 32 input paths with a Spark job of its own (one task per path). The
# log already names every file, so that job would only stat them again; a 100-file scan spent
# more time in it than in reading.
_LISTING_THRESHOLD = "spark.sql.sources.parallelPartitionDiscovery.threshold"


@contextmanager
def _listed_on_driver(spark: Any) -> Iterator[None]:
    """Build file relations without Spark's parallel listing job (the files come from the log)."""
    previous = spark.conf.get(_LISTING_THRESHOLD, None)
    spark.conf.set(_LISTING_THRESHOLD, str(2**31 - 1))
    try:
        yield
    finally:
        if previous is None:
            spark.conf.unset(_LISTING_THRESHOLD)
        else:
            spark.conf.set(_LISTING_THRESHOLD, previous)


def sql_literal(value: Any, type_sql: str) -> str:
    """A partition value as a typed Spark SQL literal (`CAST('x' AS date)`)."""
    if value is None:
        return f"CAST(NULL AS {type_sql})"
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif hasattr(value, "isoformat"):
        text = value.isoformat(sep=" ") if hasattr(value, "hour") else value.isoformat()
    else:
        text = str(value)
    escaped = text.replace("\\", "\\\\").replace("'", "\\'")
    return f"CAST('{escaped}' AS {type_sql})"


def _quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def native_scan(
    spark: Any, url: str, version: int | None = None, timestamp: str | None = None
) -> Any | None:
    """A DataFrame of the snapshot read by Spark's Parquet reader; None when the table has
    too many partitions for one plan (the caller reads it with the `delta` source)."""
    from kiln.driver.delta.source import spark_schema

    table = open_table(url, version=version, timestamp=timestamp)
    schema = spark_schema(table)
    partition_columns = list(table.metadata().partition_columns)
    files = plan_files(table)
    values = {tuple(f.partition_values.get(c) for c in partition_columns) for f in files}
    if len(values) > MAX_PARTITION_SCANS:
        return None
    return scan_files(spark, schema, partition_columns, files)


def scan_files(
    spark: Any,
    schema: Any,
    partition_columns: list[str],
    files: list[DataFile],
    path_column: str | None = None,
) -> Any:
    """A DataFrame over these files of a snapshot (one Parquet scan per partition value),
    with each row's file (Spark's `_metadata.file_path`) as `path_column` when asked."""
    from pyspark.sql.types import StructType

    if not files:
        empty = spark.createDataFrame([], schema)
        if path_column:
            return empty.selectExpr("*", f"CAST(NULL AS string) AS {_quote(path_column)}")
        return empty
    groups: dict[tuple[Any, ...], list[DataFile]] = {}
    for data_file in files:
        key = tuple(data_file.partition_values.get(c) for c in partition_columns)
        groups.setdefault(key, []).append(data_file)
    data_schema = StructType([f for f in schema.fields if f.name not in partition_columns])
    extra = [_quote(path_column)] if path_column else []
    frames = []
    for key, group in sorted(groups.items(), key=lambda item: str(item[0])):
        with _listed_on_driver(spark):
            frame = (
                spark.read.schema(data_schema)
                # Parquet's vectored reads bypass Hadoop's byte counters: without this a scan's
                # input metrics (the Spark UI's input size) count only the footers.
                .option("parquet.hadoop.vectored.io.enabled", "false")
                .parquet(*[f.uri for f in group])
            )
        if path_column:
            frame = frame.selectExpr("*", f"_metadata.file_path AS {_quote(path_column)}")
        if partition_columns or path_column:
            values = dict(zip(partition_columns, key, strict=True))
            frame = frame.selectExpr(
                *[
                    f"{sql_literal(values[f.name], f.dataType.simpleString())} AS {_quote(f.name)}"
                    if f.name in values
                    else _quote(f.name)
                    for f in schema.fields
                ],
                *extra,
            )
        frames.append(frame)
    result = frames[0]
    for frame in frames[1:]:
        result = result.union(frame)
    return result
