"""`delta.tables.DeltaTable` as Databricks users write it.

In a context this module is also `delta.tables`. merge, update and delete run as Spark jobs
on the executors with Spark SQL semantics (conditions and values are SQL strings or Columns)
and one commit from the driver (`dml`, `merge`, `dml_commit`); restore, optimize and vacuum
run on the driver with delta-rs. Each is one commit to the log.
"""

from __future__ import annotations

import re
from typing import Any

from kiln.driver.delta.conflicts import translated

__all__ = ["DeltaMergeBuilder", "DeltaOptimizeBuilder", "DeltaTable", "bind"]

_SESSION: list[Any] = []
_QUALIFIER = re.compile(r"\b([A-Za-z_][A-Za-z0-9_]*)\s*\.\s*[A-Za-z_`]")


def bind(session: Any) -> None:
    """Use this context's DeltaSession for names and DataFrames."""
    _SESSION[:] = [session]


def _session() -> Any:
    if not _SESSION:
        raise RuntimeError("delta.tables needs a Kiln execution context.")
    return _SESSION[0]


def _values(mapping: dict[str, Any] | None) -> dict[str, Any]:
    # SQL strings or Columns, as Delta's Python API takes them.
    return {str(k): v for k, v in (mapping or {}).items()}


class DeltaTable:
    """A Delta table by name or path."""

    def __init__(self, url: str, name: str | None = None, alias: str | None = None) -> None:
        self._url = url
        self._name = name
        self._alias = alias

    @classmethod
    def forName(cls, sparkSession: Any, tableOrViewName: str) -> DeltaTable:
        """The catalog table of this name."""
        table = _session().resolve(tableOrViewName)
        return cls(table.url, table.full_name)

    @classmethod
    def forPath(cls, sparkSession: Any, path: str, *args: Any) -> DeltaTable:
        """The Delta table at this path (`dbfs:/` paths included)."""
        from deltalake import DeltaTable as RsTable

        url = _session().path(path)
        if not RsTable.is_deltatable(url):
            from kiln.driver.delta.client import analysis_error

            raise analysis_error(
                "DELTA_MISSING_DELTA_TABLE", f"`{path}` is not a Delta table.", "42P01"
            )
        return cls(url)

    @classmethod
    def isDeltaTable(cls, sparkSession: Any, identifier: str) -> bool:
        """Whether a path holds a Delta table."""
        from deltalake import DeltaTable as RsTable

        return bool(RsTable.is_deltatable(_session().path(identifier)))

    def _rs(self) -> Any:
        # The snapshot an operation reads; delta-rs checks its commit against every commit
        # made since (a conflict raises one of kiln.driver.delta.conflicts' exceptions).
        from kiln.driver.delta.files import open_table

        return open_table(self._url)

    def alias(self, aliasName: str) -> DeltaTable:
        """This table under an alias (for merge conditions)."""
        return DeltaTable(self._url, self._name, aliasName)

    def toDF(self) -> Any:
        """The table's current rows as a DataFrame."""
        from kiln.driver.delta.session import ResolvedTable

        return _session().read(
            ResolvedTable(self._name or self._url, {"storage_location": self._url})
        )

    def history(self, limit: int | None = None) -> Any:
        """The table's commits, newest first (DESCRIBE HISTORY)."""
        from kiln.driver.delta.describe import history_frame

        return history_frame(_session(), self._rs(), limit)

    def detail(self) -> Any:
        """One row describing the table (DESCRIBE DETAIL)."""
        from kiln.driver.delta.describe import detail_frame

        return detail_frame(_session(), self._rs(), self._name)

    def _snapshot(self) -> Any:
        from kiln.driver.delta.dml_commit import read_snapshot

        return read_snapshot(self._rs())

    def delete(self, condition: Any = None) -> None:
        """Delete the rows matching the condition (all rows without one): a Spark job on the
        executors, one commit."""
        self._delete(condition)

    def _delete(self, condition: Any = None) -> int:
        from kiln.driver.delta import dml

        session = _session()
        session.activate()
        with translated(self._url):
            return dml.delete(session.spark, self._snapshot(), condition)

    def update(self, condition: Any = None, set: dict[str, Any] | None = None) -> None:
        """Set columns to expressions (SQL strings or Columns) on the rows matching the
        condition: a Spark job on the executors, one commit."""
        self._update(condition, set)

    def _update(self, condition: Any = None, set: dict[str, Any] | None = None) -> int:
        from kiln.driver.delta import dml

        if not set:
            raise ValueError("update() needs set={column: expression}.")
        session = _session()
        session.activate()
        with translated(self._url):
            return dml.update(session.spark, self._snapshot(), condition, dict(set))

    def updateExpr(self, condition: Any = None, set: dict[str, Any] | None = None) -> None:
        """`update` with expression strings."""
        self.update(condition, set)

    def merge(self, source: Any, condition: Any) -> DeltaMergeBuilder:
        """Start a MERGE of a DataFrame into this table."""
        return DeltaMergeBuilder(self, source, condition)

    def vacuum(self, retentionHours: float | None = None) -> Any:
        """Delete files no longer in the table and older than the retention (7 days)."""
        hours = None if retentionHours is None else int(retentionHours)
        removed = self._rs().vacuum(
            retention_hours=hours, dry_run=False, enforce_retention_duration=hours is None
        )
        return _session().spark.createDataFrame([(str(p),) for p in removed], "path string")

    def optimize(self) -> DeltaOptimizeBuilder:
        """Start an OPTIMIZE."""
        return DeltaOptimizeBuilder(self)

    def restoreToVersion(self, version: int) -> Any:
        """Restore the table to an earlier version (a new commit)."""
        _session().check_version(self._url, int(version), None)
        with translated(self._url):
            metrics = self._rs().restore(int(version))
        return _metrics_frame(metrics)

    def restoreToTimestamp(self, timestamp: str) -> Any:
        """Restore the table as of a timestamp (a new commit)."""
        from datetime import datetime

        with translated(self._url):
            metrics = self._rs().restore(datetime.fromisoformat(str(timestamp)))
        return _metrics_frame(metrics)


def _metrics_frame(metrics: Any) -> Any:
    import json

    data = metrics if isinstance(metrics, dict) else json.loads(str(metrics) or "{}")
    if not data:
        return None
    columns = sorted(data)
    row = tuple(str(data[c]) for c in columns)
    return _session().spark.createDataFrame([row], ", ".join(f"`{c}` string" for c in columns))


class DeltaOptimizeBuilder:
    """`DeltaTable.optimize()`: compaction (Z-order is not offered)."""

    def __init__(self, table: DeltaTable) -> None:
        self._table = table
        self._where: str | None = None

    def where(self, partitionFilter: str) -> DeltaOptimizeBuilder:
        """Compact only partitions matching a filter like `p = 'x'`."""
        self._where = partitionFilter
        return self

    def executeCompaction(self) -> Any:
        """Compact small files into larger ones (one commit)."""
        filters = _partition_filters(self._where) if self._where else None
        with translated(self._table._url):
            metrics = self._table._rs().optimize.compact(partition_filters=filters)
        return _metrics_frame(metrics)

    def executeZOrderBy(self, *cols: str) -> Any:
        """Z-order the files by columns."""
        with translated(self._table._url):
            metrics = self._table._rs().optimize.z_order(list(cols))
        return _metrics_frame(metrics)


def _partition_filters(text: str) -> list[tuple[str, str, Any]]:
    filters = []
    for part in re.split(r"\s+and\s+", text, flags=re.IGNORECASE):
        match = re.fullmatch(r"\s*`?(\w+)`?\s*(=|!=|<>|>=|<=|>|<)\s*'?([^']*)'?\s*", part)
        if match is None:
            raise ValueError(f"Unsupported OPTIMIZE filter {part!r}: use `column = value`.")
        op = "!=" if match.group(2) == "<>" else match.group(2)
        filters.append((match.group(1), op, match.group(3)))
    return filters


class DeltaMergeBuilder:
    """MERGE clauses, run as Spark jobs at `execute()`."""

    def __init__(
        self, table: DeltaTable, source: Any, condition: Any, source_alias: str | None = None
    ) -> None:
        self._table = table
        self._source = source
        self._condition = condition
        self._source_alias = source_alias
        self._clauses: list[tuple[str, Any, Any]] = []

    def whenMatchedUpdate(
        self, condition: Any = None, set: dict[str, Any] | None = None
    ) -> DeltaMergeBuilder:
        self._clauses.append(("update", condition, _values(set)))
        return self

    def whenMatchedUpdateAll(self, condition: Any = None) -> DeltaMergeBuilder:
        self._clauses.append(("update_all", condition, None))
        return self

    def whenMatchedDelete(self, condition: Any = None) -> DeltaMergeBuilder:
        self._clauses.append(("delete", condition, None))
        return self

    def whenNotMatchedInsert(
        self, condition: Any = None, values: dict[str, Any] | None = None
    ) -> DeltaMergeBuilder:
        self._clauses.append(("insert", condition, _values(values)))
        return self

    def whenNotMatchedInsertAll(self, condition: Any = None) -> DeltaMergeBuilder:
        self._clauses.append(("insert_all", condition, None))
        return self

    def whenNotMatchedBySourceDelete(self, condition: Any = None) -> DeltaMergeBuilder:
        self._clauses.append(("source_delete", condition, None))
        return self

    def whenNotMatchedBySourceUpdate(
        self, condition: Any = None, set: dict[str, Any] | None = None
    ) -> DeltaMergeBuilder:
        self._clauses.append(("source_update", condition, _values(set)))
        return self

    def _aliases(self) -> tuple[str, str]:
        target = self._table._alias or "target"
        if self._source_alias:
            return target, self._source_alias
        text = self._condition if isinstance(self._condition, str) else str(self._condition)
        qualifiers = [q for q in _QUALIFIER.findall(text) if q != target]
        source = qualifiers[0] if qualifiers else "source"
        return target, source

    def execute(self) -> Any:
        """Run the merge as Spark jobs (one commit); Databricks' metrics row."""
        from kiln.driver.delta.merge import Clause, merge

        target, source_alias = self._aliases()
        session = _session()
        session.activate()
        source = self._source
        if not hasattr(source, "alias"):  # pandas or Arrow data: a DataFrame of it
            source = session.spark.createDataFrame(source)
        clauses = [Clause(kind, condition, values) for kind, condition, values in self._clauses]
        with translated(self._table._url):
            result = merge(
                session.spark,
                self._table._snapshot(),
                source,
                self._condition,
                clauses,
                target_alias=target,
                source_alias=source_alias,
            )
        return session.spark.createDataFrame(
            [(result.affected, result.updated, result.deleted, result.inserted)],
            "num_affected_rows bigint, num_updated_rows bigint, num_deleted_rows bigint, "
            "num_inserted_rows bigint",
        )
