"""`delta.tables.DeltaTable` as Databricks users write it, on delta-rs.

In a context this module is also `delta.tables`. DML (merge, update, delete), restore,
optimize and vacuum run on the driver with delta-rs, each one commit to the log; conditions
and expressions are SQL strings (delta-rs evaluates them); a merge's source DataFrame is
collected to the driver as Arrow.
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


def _text(expr: Any) -> str:
    if isinstance(expr, str):
        return expr
    raise TypeError(
        "Kiln's DeltaTable takes conditions and values as SQL strings (for example "
        '"t.id = s.id"), not Column objects.'
    )


def _values(mapping: dict[str, Any] | None) -> dict[str, str]:
    return {str(k): _text(v) for k, v in (mapping or {}).items()}


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

    def delete(self, condition: Any = None) -> None:
        """Delete the rows matching the condition (all rows without one)."""
        with translated(self._url):
            self._rs().delete(None if condition is None else _text(condition))

    def update(self, condition: Any = None, set: dict[str, Any] | None = None) -> None:
        """Set columns to SQL expressions on the rows matching the condition."""
        if not set:
            raise ValueError("update() needs set={column: expression}.")
        with translated(self._url):
            self._rs().update(
                updates=_values(set), predicate=None if condition is None else _text(condition)
            )

    def updateExpr(self, condition: Any = None, set: dict[str, Any] | None = None) -> None:
        """`update` with expression strings."""
        self.update(condition, set)

    def merge(self, source: Any, condition: Any) -> DeltaMergeBuilder:
        """Start a MERGE of a DataFrame into this table."""
        return DeltaMergeBuilder(self, source, _text(condition))

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
    """MERGE clauses, run by delta-rs at `execute()`."""

    def __init__(
        self, table: DeltaTable, source: Any, condition: str, source_alias: str | None = None
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
        qualifiers = [q for q in _QUALIFIER.findall(self._condition) if q != target]
        source = qualifiers[0] if qualifiers else "source"
        return target, source

    def execute(self) -> Any:
        """Run the merge (one commit); its metrics as a one-row DataFrame."""
        target, source_alias = self._aliases()
        data = _to_arrow(self._source)
        merger = self._table._rs().merge(
            data, self._condition, source_alias=source_alias, target_alias=target
        )
        for kind, condition, values in self._clauses:
            predicate = None if condition is None else _text(condition)
            if kind == "update":
                merger = merger.when_matched_update(values, predicate=predicate)
            elif kind == "update_all":
                merger = merger.when_matched_update_all(predicate=predicate)
            elif kind == "delete":
                merger = merger.when_matched_delete(predicate=predicate)
            elif kind == "insert":
                merger = merger.when_not_matched_insert(values, predicate=predicate)
            elif kind == "insert_all":
                merger = merger.when_not_matched_insert_all(predicate=predicate)
            elif kind == "source_delete":
                merger = merger.when_not_matched_by_source_delete(predicate=predicate)
            else:
                merger = merger.when_not_matched_by_source_update(values, predicate=predicate)
        with translated(self._table._url):
            metrics = merger.execute()
        return _metrics_frame(metrics)


def _to_arrow(df: Any) -> Any:
    # A Spark DataFrame collected to the driver; pandas and Arrow data taken as they are.
    if hasattr(df, "toArrow"):
        return df.toArrow()
    import pyarrow as pa

    if isinstance(df, pa.Table):
        return df
    return pa.Table.from_pandas(df, preserve_index=False)
