"""Planning of UPDATE, DELETE and MERGE without Spark: the filters a Spark SQL condition
implies for file skipping, file paths as Spark and the log spell them, and what a concurrent
commit did."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import deltalake
import pyarrow as pa
from pyspark.sql.types import LongType, StringType, StructField, StructType

from kiln.driver.delta.dml_commit import commit_rewrite, parse_commit, read_snapshot
from kiln.driver.delta.dml_plan import (
    PlannedFile,
    condition_filters,
    path_key,
    prune,
    spark_path_key,
)
from kiln.driver.delta.files import DataFile, write_files
from kiln.driver.delta.source import commit_files

COLUMNS = ["id", "City", "day"]


def _kinds(condition: str | None) -> list[tuple[str, object, object]]:
    return [
        (
            type(f).__name__,
            getattr(f, "attribute", getattr(getattr(f, "child", None), "attribute", None)),
            getattr(f, "value", getattr(getattr(f, "child", None), "value", None)),
        )
        for f in condition_filters(condition, COLUMNS)
    ]


def test_simple_conjuncts_become_filters() -> None:
    assert _kinds("id = 3 AND city <> 'oslo' AND t.day >= DATE '2024-01-02'") == [
        ("EqualTo", ("id",), 3),
        ("Not", ("City",), "oslo"),
        ("GreaterThanOrEqual", ("day",), date(2024, 1, 2)),
    ]
    assert _kinds("5 < id and (id <= -2.5) and `city` IN ('a', 'b') and id IS NOT NULL") == [
        ("GreaterThan", ("id",), 5),
        ("LessThanOrEqual", ("id",), -2.5),
        ("In", ("City",), ("a", "b")),
        ("IsNotNull", ("id",), None),
    ]
    assert _kinds("id <=> 7L AND city IS NULL") == [
        ("EqualNullSafe", ("id",), 7),
        ("IsNull", ("City",), None),
    ]


def test_other_conditions_only_narrow_by_what_is_certain() -> None:
    # A top-level OR: nothing is certain about a matching row.
    assert _kinds("id = 2 OR concat_ws('-', city, 'q') = 'z-q' AND id > 45") == []
    # Spark-only functions, unknown columns and column comparisons are left to Spark.
    assert _kinds("date_add(day, 1) = DATE '2024-01-02' AND id = 1") == [("EqualTo", ("id",), 1)]
    assert _kinds("nope = 1 AND id = city AND id BETWEEN 1 AND 4 AND id > 0") == [
        ("GreaterThan", ("id",), 0)
    ]
    assert _kinds(None) == [] and _kinds("") == []


def test_prune_by_partition_and_statistics() -> None:
    files = [
        PlannedFile("a", DataFile("/t/a", 1, {"City": "oslo"}, 2, {"id": 1}, {"id": 5}, {})),
        PlannedFile("b", DataFile("/t/b", 1, {"City": "rome"}, 2, {"id": 6}, {"id": 9}, {})),
        PlannedFile("c", DataFile("/t/c", 1, {"City": "oslo"}, 2, {}, {}, {})),
    ]
    kept = prune(files, condition_filters("id = 7 and city = 'oslo'", COLUMNS), ["City"])
    assert [f.path for f in kept] == ["c"]  # no statistics: kept
    assert [f.path for f in prune(files, condition_filters("id > 5", COLUMNS), ["City"])] == [
        "b",
        "c",
    ]


def test_paths_as_spark_and_the_planner_spell_them() -> None:
    planned = "file:///data/t/c=a%20b/part-0.parquet"  # the file is named `c=a%20b`
    seen_by_spark = "file:/data/t/c=a%2520b/part-0.parquet"
    assert spark_path_key(seen_by_spark) == path_key(planned) == "/data/t/c=a%20b/part-0.parquet"
    assert path_key("s3://bucket/t/x.parquet") == "s3://bucket/t/x.parquet"


def test_commits_as_the_conflict_checker_sees_them() -> None:
    def line(**action: object) -> str:
        return json.dumps(action)

    stats = json.dumps({"numRecords": 1, "minValues": {"id": 3}, "maxValues": {"id": 3}})
    append = "\n".join(
        [
            line(commitInfo={"operation": "WRITE", "operationParameters": {"mode": "Append"}}),
            line(add={"path": "p=1/x.parquet", "partitionValues": {"p": "1"}, "size": 9,
                      "dataChange": True, "stats": stats}),
        ]
    )  # fmt: skip
    commit = parse_commit(3, append)
    assert commit.blind_append and commit.operation == "WRITE"
    assert commit.added[0].max_values == {"id": 3} and commit.added[0].partition_values == {
        "p": "1"
    }
    kiln = "\n".join(
        [
            line(commitInfo={"operation": "WRITE", "kiln.operation": "MERGE",
                             "isBlindAppend": False}),
            line(remove={"path": "old.parquet", "dataChange": True}),
            line(remove={"path": "compacted.parquet", "dataChange": False}),
            line(metaData={"id": "x"}),
        ]
    )  # fmt: skip
    merged = parse_commit(4, kiln)
    assert merged.operation == "MERGE" and not merged.blind_append
    assert merged.removed == {"old.parquet"} and merged.metadata and not merged.protocol


def test_rewrite_of_a_file_whose_partition_value_needs_quoting(tmp_path: Path) -> None:
    # The log keeps such paths percent-encoded; a remove given the encoded path would remove
    # nothing, and the rewritten rows would then be in the table twice.
    uri = str(tmp_path / "t")
    schema = StructType([StructField("id", LongType()), StructField("p", StringType())])
    batch = pa.record_batch({"id": [1, 2, 3, 4], "p": ["a b", "a b", "x/y%", "plain"]})
    commit_files(
        uri,
        write_files(uri, iter([batch]), ["p"]),
        schema,
        overwrite=False,
        partition_columns=["p"],
    )
    snapshot = read_snapshot(deltalake.DeltaTable(uri))
    touched = [f for f in snapshot.files if f.data.partition_values.get("p") in ("a b", "x/y%")]
    assert len(touched) == 2
    kept = pa.record_batch({"id": pa.array([2], pa.int64()), "p": ["a b"]})
    version = commit_rewrite(
        snapshot,
        touched,
        write_files(uri, iter([kept]), ["p"]),
        operation="DELETE",
        parameters={"predicate": '["id IN (1, 3)"]'},
        metrics={"numDeletedRows": 2},
        read=touched,
        filters=None,
    )
    assert version == 1
    rows = deltalake.DeltaTable(uri).to_pandas().sort_values("id")
    assert rows["id"].tolist() == [2, 4]
    assert rows["p"].tolist() == ["a b", "plain"]
