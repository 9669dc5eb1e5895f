"""UPDATE and DELETE as Spark jobs on the executors, with Spark SQL semantics, and one commit.

The driver plans the candidate files of the snapshot it reads (partition values and statistics
against the condition's simple conjuncts, `dml_plan`); one Spark job finds the candidates that
hold matching rows (`_metadata.file_path`); a second rewrites only those files on the
executors (`files.write_files` inside `mapInArrow`, partitioned like the table), counting the
rows it changed as it goes; the driver then commits remove actions for the rewritten files and
add actions for the new ones in one transaction (`dml_commit`). A statement that changes no
row commits nothing. MERGE (`merge.py`) uses the same rewrite job.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from typing import Any

from kiln.driver.delta.dml_commit import Snapshot, commit_rewrite
from kiln.driver.delta.dml_plan import (
    PlannedFile,
    condition_filters,
    path_key,
    prune,
    spark_path_key,
)
from kiln.driver.delta.files import WrittenFile

__all__ = [
    "DROP",
    "PATH",
    "delete",
    "expression",
    "metric",
    "rewrite",
    "scan",
    "touched_files",
    "update",
]

# Hidden columns of a rewrite: the row's file, whether to drop it, and counters (`metric`).
PATH = "__kiln_file"
DROP = "__kiln_drop"
_METRIC = "__kiln_m_"
_OUT = (
    "path string, size bigint, partition_values string, modification_time bigint, "
    "stats string, metrics string"
)


def metric(name: str) -> str:
    """The hidden column a rewrite sums into the metric `name`."""
    return _METRIC + name


def expression(value: Any) -> Any:
    """A Spark Column from a SQL string or a Column."""
    from pyspark.sql import functions as F

    return F.expr(value) if isinstance(value, str) else value


def scan(spark: Any, snapshot: Snapshot, files: Sequence[PlannedFile]) -> Any:
    """The rows of these files, with each row's file in `PATH`."""
    from kiln.driver.delta.scan import scan_files
    from kiln.driver.delta.source import spark_schema

    return scan_files(
        spark,
        spark_schema(snapshot.table),
        snapshot.partition_columns,
        [f.data for f in files],
        PATH,
    )


def touched_files(
    frame: Any, files: Sequence[PlannedFile], condition: Any = None
) -> list[PlannedFile]:
    """The files among `files` where `frame` (a `scan` of them) has rows (matching
    `condition`): a Spark job that returns file names only."""
    if condition is not None:
        frame = frame.where(condition)
    found = {spark_path_key(r[0]) for r in frame.select(PATH).distinct().collect()}
    return [f for f in files if path_key(f.data.uri) in found]


def _writer(uri: str, partition_columns: list[str], columns: list[str]) -> Any:
    def write(batches: Iterator[Any]) -> Iterator[Any]:
        import pyarrow as pa
        import pyarrow.compute as pc

        from kiln.driver.delta.files import write_files

        sums: dict[str, int] = {}

        def data() -> Iterator[Any]:
            for batch in batches:
                for name in batch.schema.names:
                    if name.startswith(_METRIC):
                        counted = pc.sum(pc.cast(batch.column(name), pa.int64())).as_py()
                        sums[name[len(_METRIC) :]] = sums.get(name[len(_METRIC) :], 0) + (
                            counted or 0
                        )
                if DROP in batch.schema.names:
                    batch = batch.filter(pc.invert(pc.fill_null(batch.column(DROP), False)))
                yield batch.select(columns)

        written = write_files(uri, data(), partition_columns)
        rows = [
            {
                "path": f.path,
                "size": f.size,
                "partition_values": json.dumps(f.partition_values),
                "modification_time": f.modification_time,
                "stats": f.stats,
                "metrics": None,
            }
            for f in written
        ]
        rows.append(
            {
                "path": None,
                "size": None,
                "partition_values": None,
                "modification_time": None,
                "stats": None,
                "metrics": json.dumps(sums),
            }
        )
        schema = pa.schema(
            [
                ("path", pa.string()),
                ("size", pa.int64()),
                ("partition_values", pa.string()),
                ("modification_time", pa.int64()),
                ("stats", pa.string()),
                ("metrics", pa.string()),
            ]
        )
        yield pa.RecordBatch.from_pylist(rows, schema=schema)

    return write


def rewrite(frame: Any, snapshot: Snapshot) -> tuple[list[WrittenFile], dict[str, int]]:
    """Write `frame`'s rows (the table's columns; rows with `DROP` true left out; `metric`
    columns summed) as new files of the table on the executors; the files and the sums."""
    from kiln.driver.delta.source import spark_schema

    columns = [f.name for f in spark_schema(snapshot.table).fields]
    out = frame.mapInArrow(_writer(snapshot.uri, snapshot.partition_columns, columns), _OUT)
    written: list[WrittenFile] = []
    sums: dict[str, int] = {}
    for row in out.collect():
        if row.path is None:
            for key, value in json.loads(row.metrics or "{}").items():
                sums[key] = sums.get(key, 0) + int(value)
            continue
        written.append(
            WrittenFile(
                path=row.path,
                size=int(row.size),
                partition_values=json.loads(row.partition_values),
                modification_time=int(row.modification_time),
                stats=row.stats,
            )
        )
    return written, sums


def _rows(files: Sequence[PlannedFile | WrittenFile]) -> int:
    total = 0
    for f in files:
        if isinstance(f, PlannedFile):
            total += int(f.data.num_records or 0)
        else:
            total += int(json.loads(f.stats or "{}").get("numRecords") or 0)
    return total


def _bytes(files: Sequence[PlannedFile | WrittenFile]) -> int:
    return sum(f.data.size if isinstance(f, PlannedFile) else f.size for f in files)


def _metrics(
    touched: Sequence[PlannedFile],
    written: Sequence[WrittenFile],
    started: float,
    **rows: int,
) -> dict[str, int]:
    """A rewrite's operationMetrics as Delta orders them: files, then `rows`, then bytes and
    time."""
    return {
        "numRemovedFiles": len(touched),
        "numAddedFiles": len(written),
        **rows,
        "numRemovedBytes": _bytes(touched),
        "numAddedBytes": _bytes(written),
        "executionTimeMs": int((time.monotonic() - started) * 1000),
    }


def _candidates(snapshot: Snapshot, condition: Any) -> tuple[list[PlannedFile], list[Any]]:
    from kiln.driver.delta.source import spark_schema

    if not isinstance(condition, str):
        return list(snapshot.files), []
    columns = [f.name for f in spark_schema(snapshot.table).fields]
    filters = condition_filters(condition, columns)
    return prune(snapshot.files, filters, snapshot.partition_columns), filters


def _predicate(condition: Any) -> str:
    if condition is None:
        return "[]"
    return json.dumps([condition if isinstance(condition, str) else str(condition)])


def delete(spark: Any, snapshot: Snapshot, condition: Any = None) -> int:
    """DELETE the rows where `condition` is true (every row without one); the rows deleted."""
    from pyspark.sql import functions as F

    started = time.monotonic()
    written: list[WrittenFile] = []
    if condition is None:
        touched, read, filters = list(snapshot.files), list(snapshot.files), None
        deleted = _rows(touched)
        if any(f.data.num_records is None for f in touched):  # a writer that kept no stats
            deleted = scan(spark, snapshot, touched).count()
    else:
        read, found = _candidates(snapshot, condition)
        filters = found
        matching = expression(condition)
        touched = touched_files(scan(spark, snapshot, read), read, matching)
        deleted = 0
        if touched:
            hit = F.coalesce(matching, F.lit(False))
            frame = scan(spark, snapshot, touched).select(
                "*", hit.alias(DROP), hit.alias(metric("deleted"))
            )
            written, sums = rewrite(frame, snapshot)
            deleted = sums.get("deleted", 0)
    metrics = _metrics(
        touched, written, started, numDeletedRows=deleted, numCopiedRows=_rows(written)
    )
    if deleted or (condition is None and touched):
        commit_rewrite(
            snapshot,
            touched,
            written,
            operation="DELETE",
            parameters={"predicate": _predicate(condition)},
            metrics=metrics,
            read=read,
            filters=filters,
        )
    return deleted


def update(spark: Any, snapshot: Snapshot, condition: Any, assignments: dict[str, Any]) -> int:
    """UPDATE: each assigned column set to its expression where `condition` is true (every row
    without one; rows where it is NULL keep their values); the rows updated."""
    from pyspark.sql import functions as F

    from kiln.driver.delta.client import analysis_error
    from kiln.driver.delta.source import spark_schema

    started = time.monotonic()
    fields = spark_schema(snapshot.table).fields
    by_lower = {f.name.lower(): f for f in fields}
    targets: dict[str, Any] = {}
    for name, value in assignments.items():
        column = by_lower.get(str(name).strip("`").lower())
        if column is None:
            raise analysis_error(
                "DELTA_MISSING_SET_COLUMN",
                f"`{name}` column not found given columns: [{', '.join(f.name for f in fields)}].",
                "42703",
            )
        targets[column.name] = expression(value)
    read, filters = _candidates(snapshot, condition)
    matching = F.lit(True) if condition is None else expression(condition)
    touched = touched_files(scan(spark, snapshot, read), read, matching)
    written: list[WrittenFile] = []
    updated = 0
    if touched:
        hit = F.coalesce(matching, F.lit(False))
        columns = [
            F.when(hit, targets[f.name].cast(f.dataType))
            .otherwise(F.col(f"`{f.name}`"))
            .alias(f.name)
            if f.name in targets
            else F.col(f"`{f.name}`")
            for f in fields
        ]
        frame = scan(spark, snapshot, touched).select(*columns, hit.alias(metric("updated")))
        written, sums = rewrite(frame, snapshot)
        updated = sums.get("updated", 0)
    metrics = _metrics(
        touched, written, started, numUpdatedRows=updated, numCopiedRows=_rows(written) - updated
    )
    if updated:
        commit_rewrite(
            snapshot,
            touched,
            written,
            operation="UPDATE",
            parameters={"predicate": _predicate(condition)},
            metrics=metrics,
            read=read,
            filters=filters if condition is not None else None,
        )
    return updated
