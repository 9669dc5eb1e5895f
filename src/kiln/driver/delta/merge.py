"""MERGE as Spark jobs on the executors, with Databricks' semantics, and one commit.

Job 1 joins the whole target (each row with its file and a row id) with the source on the
merge condition: the files holding matched rows (and, with WHEN NOT MATCHED BY SOURCE
clauses, the files holding unmatched rows that a clause applies to) are the touched files, and
a target row matched by more than one source row fails the merge with
DELTA_MULTIPLE_SOURCE_ROW_MATCHING_TARGET_ROW_IN_MERGE before anything is written. Job 2
rewrites the touched files (target LEFT JOIN source: the first matched / not-matched-by-source
clause whose condition holds applies, in the order given; rows no clause applies to are
copied) together with the inserted rows (source LEFT ANTI JOIN target, the first insert clause
whose condition holds), written on the executors like any rewrite (`dml.rewrite`); the driver
commits once (`dml_commit`). The source is never collected to the driver.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kiln.driver.delta.dml import DROP, PATH, expression, metric, rewrite, scan
from kiln.driver.delta.dml_commit import Snapshot, commit_rewrite
from kiln.driver.delta.dml_plan import path_key, spark_path_key

__all__ = ["Clause", "MergeResult", "merge", "multiple_matches"]

_ROW = "__kiln_row"
_MATCHED = "__kiln_matched"
_CHOICE = "__kiln_clause"
_MATCHED_KINDS = ("update", "update_all", "delete")
_SOURCE_KINDS = ("source_update", "source_delete")
_INSERT_KINDS = ("insert", "insert_all")


@dataclass
class Clause:
    """One WHEN clause: its kind, condition (SQL string, Column or None) and values."""

    kind: str
    condition: Any = None
    values: dict[str, Any] | None = None


@dataclass
class MergeResult:
    """The row counts Databricks' MERGE returns."""

    updated: int = 0
    deleted: int = 0
    inserted: int = 0

    @property
    def affected(self) -> int:
        """Rows updated, deleted or inserted."""
        return self.updated + self.deleted + self.inserted


def multiple_matches() -> Exception:
    """Databricks' error for a target row matched by more than one source row."""
    from kiln.driver.delta.client import analysis_error

    return analysis_error(
        "DELTA_MULTIPLE_SOURCE_ROW_MATCHING_TARGET_ROW_IN_MERGE",
        "Cannot perform Merge as multiple source rows matched and attempted to modify the same "
        "target row in the Delta table in possibly conflicting ways. By SQL semantics of Merge, "
        "when multiple source rows match on the same target row, the result may be ambiguous "
        "as it is unclear which source row should be used to update or delete the matching "
        "target row. You can preprocess the source table to eliminate the possibility of "
        "multiple matches.",
        "21506",
    )


def _name(key: str) -> str:
    # `t.v`, `v` and `` `v` `` all name the target column v.
    return str(key).split(".")[-1].strip().strip("`").lower()


def _column(alias: str, name: str) -> Any:
    from pyspark.sql import functions as F

    return F.col(f"`{alias}`.`{name}`")


def _true(condition: Any) -> Any:
    from pyspark.sql import functions as F

    if condition is None:
        return F.lit(True)
    return F.coalesce(expression(condition), F.lit(False))


def _choice(clauses: Sequence[tuple[int, Clause]]) -> Any:
    """The index of the first clause whose condition holds (-1: none)."""
    from pyspark.sql import functions as F

    result = F.lit(-1)
    for index, clause in reversed(clauses):
        result = F.when(_true(clause.condition), F.lit(index)).otherwise(result)
    return result


def merge(
    spark: Any,
    snapshot: Snapshot,
    source: Any,
    condition: Any,
    clauses: Sequence[Clause],
    *,
    target_alias: str,
    source_alias: str,
) -> MergeResult:
    """Run the MERGE (one commit when it changes anything); its row counts."""
    from pyspark.sql import functions as F

    from kiln.driver.delta.source import spark_schema

    started = time.monotonic()
    fields = spark_schema(snapshot.table).fields
    names = {f.name.lower(): f.name for f in fields}
    source_names = {c.lower(): c for c in source.columns}
    _check_columns(clauses, names)
    indexed = list(enumerate(clauses))
    matched = [(i, c) for i, c in indexed if c.kind in _MATCHED_KINDS]
    by_source = [(i, c) for i, c in indexed if c.kind in _SOURCE_KINDS]
    inserts = [(i, c) for i, c in indexed if c.kind in _INSERT_KINDS]
    on = expression(condition)
    src = source.alias(source_alias)

    # Job 1: touched files, and no target row matched twice.
    touched = []
    if matched or by_source:
        target = scan(spark, snapshot, snapshot.files).withColumn(
            _ROW, F.monotonically_increasing_id()
        )
        joined = target.alias(target_alias).join(
            src.withColumn(_MATCHED, F.lit(True)), on, "left" if by_source else "inner"
        )
        hit = F.col(_MATCHED).isNotNull()
        if by_source:
            applies = F.lit(False)
            for _, clause in by_source:
                applies = applies | _true(clause.condition)
            hit = hit | (F.col(_MATCHED).isNull() & applies)
        counts = (
            joined.where(hit)
            .groupBy(F.col(f"`{target_alias}`.`{PATH}`").alias(PATH), _ROW)
            .agg(F.count(_MATCHED).alias("n"))
            .groupBy(PATH)
            .agg(F.max("n").alias("n"))
            .collect()
        )
        only_delete = len(matched) == 1 and matched[0][1].kind == "delete"
        only_delete = only_delete and matched[0][1].condition is None
        if matched and not only_delete and any(int(r.n or 0) > 1 for r in counts):
            raise multiple_matches()
        found = {spark_path_key(r[PATH]) for r in counts}
        touched = [f for f in snapshot.files if path_key(f.data.uri) in found]

    frames = []
    if touched:
        rows = scan(spark, snapshot, touched).alias(target_alias)
        joined = rows.join(src.withColumn(_MATCHED, F.lit(True)), on, "left")
        is_matched = F.col(_MATCHED).isNotNull()
        chosen = F.when(is_matched, _choice(matched)).otherwise(_choice(by_source))
        joined = joined.withColumn(_CHOICE, chosen)
        pick = F.col(_CHOICE)
        out = []
        for f in fields:
            value = _column(target_alias, f.name)
            for index, clause in indexed:
                if clause.kind not in ("update", "update_all", "source_update"):
                    continue
                new = _assigned(clause, f.name, source_alias, source_names)
                if new is not None:
                    value = F.when(pick == index, new.cast(f.dataType)).otherwise(value)
            out.append(value.alias(f.name))
        kinds = {i: c.kind for i, c in indexed}

        def picked(*wanted: str) -> Any:
            indices = [i for i, k in kinds.items() if k in wanted]
            return pick.isin(indices) if indices else F.lit(False)

        frames.append(
            joined.select(
                *out,
                picked("delete", "source_delete").alias(DROP),
                (is_matched & picked("update", "update_all")).alias(metric("matched_updated")),
                (is_matched & picked("delete")).alias(metric("matched_deleted")),
                (~is_matched & picked("source_update")).alias(metric("source_updated")),
                (~is_matched & picked("source_delete")).alias(metric("source_deleted")),
                F.lit(False).alias(metric("inserted")),
            )
        )
    if inserts:
        everything = scan(spark, snapshot, snapshot.files).alias(target_alias)
        fresh = src.join(everything, on, "left_anti").withColumn(_CHOICE, _choice(inserts))
        out = []
        for f in fields:
            value = F.lit(None)
            for index, clause in inserts:
                new = _assigned(clause, f.name, source_alias, source_names)
                if new is not None:
                    value = F.when(F.col(_CHOICE) == index, new).otherwise(value)
            out.append(value.cast(f.dataType).alias(f.name))
        frames.append(
            fresh.select(
                *out,
                (F.col(_CHOICE) < 0).alias(DROP),
                F.lit(False).alias(metric("matched_updated")),
                F.lit(False).alias(metric("matched_deleted")),
                F.lit(False).alias(metric("source_updated")),
                F.lit(False).alias(metric("source_deleted")),
                (F.col(_CHOICE) >= 0).alias(metric("inserted")),
            )
        )
    written: list[Any] = []
    sums: dict[str, int] = {}
    if frames:
        frame = frames[0] if len(frames) == 1 else frames[0].unionByName(frames[1])
        written, sums = rewrite(frame, snapshot)
    result = MergeResult(
        updated=sums.get("matched_updated", 0) + sums.get("source_updated", 0),
        deleted=sums.get("matched_deleted", 0) + sums.get("source_deleted", 0),
        inserted=sums.get("inserted", 0),
    )
    if result.affected:
        copied = sum(json.loads(w.stats).get("numRecords", 0) for w in written)
        copied -= result.updated + result.inserted
        metrics = {
            "numTargetRowsInserted": result.inserted,
            "numTargetRowsUpdated": result.updated,
            "numTargetRowsDeleted": result.deleted,
            "numTargetRowsCopied": copied,
            "numTargetRowsMatchedUpdated": sums.get("matched_updated", 0),
            "numTargetRowsMatchedDeleted": sums.get("matched_deleted", 0),
            "numTargetRowsNotMatchedBySourceUpdated": sums.get("source_updated", 0),
            "numTargetRowsNotMatchedBySourceDeleted": sums.get("source_deleted", 0),
            "numTargetFilesAdded": len(written),
            "numTargetFilesRemoved": len(touched),
            "numOutputRows": copied + result.updated + result.inserted,
            "executionTimeMs": int((time.monotonic() - started) * 1000),
        }
        commit_rewrite(
            snapshot,
            touched,
            written,
            operation="MERGE",
            parameters=_parameters(condition, clauses),
            metrics=metrics,
            read=snapshot.files,
            filters=None,
        )
    return result


def _assigned(
    clause: Clause, name: str, source_alias: str, source_names: dict[str, str]
) -> Any | None:
    """The clause's new value for target column `name`, or None when it leaves it alone."""
    if clause.kind in ("update_all", "insert_all"):
        found = source_names.get(name.lower())
        return None if found is None else _column(source_alias, found)
    for key, value in (clause.values or {}).items():
        if _name(key) == name.lower():
            return expression(value)
    return None


def _check_columns(clauses: Sequence[Clause], names: dict[str, str]) -> None:
    from kiln.driver.delta.client import analysis_error

    for clause in clauses:
        for key in clause.values or {}:
            if _name(key) not in names:
                raise analysis_error(
                    "DELTA_MERGE_UNRESOLVED_EXPRESSION",
                    f"Cannot resolve {key} in {clause.kind.upper().replace('_', ' ')} clause "
                    f"given columns {', '.join(names.values())}.",
                    "42601",
                )


def _parameters(condition: Any, clauses: Sequence[Clause]) -> dict[str, Any]:
    def described(kinds: tuple[str, ...]) -> str:
        return json.dumps(
            [
                {
                    "actionType": c.kind.replace("source_", "").replace("_all", "").lower(),
                    **({"predicate": str(c.condition)} if c.condition is not None else {}),
                }
                for c in clauses
                if c.kind in kinds
            ]
        )

    return {
        "predicate": json.dumps([str(condition)]),
        "matchedPredicates": described(_MATCHED_KINDS),
        "notMatchedPredicates": described(_INSERT_KINDS),
        "notMatchedBySourcePredicates": described(_SOURCE_KINDS),
    }
