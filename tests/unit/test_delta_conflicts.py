"""Real conflicts between Delta writers, made deterministic: a conflicting commit lands between
one writer's read of the table and its commit. The loser fails with Databricks' concurrent-
modification wording, the winner's commit stays, and no row is lost; partition values become
typed SQL literals for Spark's Parquet reader."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

import deltalake
import pyarrow as pa
import pytest
from pyspark.sql.types import LongType, StructField, StructType

from kiln.driver.delta.conflicts import (
    ConcurrentAppendException,
    ConcurrentDeleteReadException,
    ConcurrentModificationException,
    MetadataChangedException,
    classify,
)
from kiln.driver.delta.files import write_files
from kiln.driver.delta.scan import sql_literal
from kiln.driver.delta.source import commit_files
from kiln.driver.delta.tables import DeltaTable

SCHEMA = StructType([StructField("id", LongType())])


def _table(tmp_path: Path) -> str:
    uri = str(tmp_path / "t")
    deltalake.write_deltalake(uri, pa.table({"id": pa.array([1, 2, 3], pa.int64())}))
    return uri


def _ids(uri: str) -> list[int]:
    return sorted(deltalake.DeltaTable(uri).to_pandas()["id"].tolist())


def _raced(table: DeltaTable, uri: str, conflicting: Any) -> None:
    """Make `conflicting` commit after `table`'s next operation read its snapshot."""
    read = table._rs

    def snapshot() -> Any:
        taken = read()
        conflicting(uri)
        return taken

    table._rs = snapshot  # type: ignore[method-assign]


def test_delete_racing_a_delete_fails_and_keeps_the_winner(tmp_path: Path) -> None:
    uri = _table(tmp_path)
    loser = DeltaTable(uri)
    _raced(loser, uri, lambda u: deltalake.DeltaTable(u).delete("id = 1"))
    with pytest.raises(ConcurrentModificationException) as caught:
        loser.delete("id = 2")
    assert isinstance(caught.value, ConcurrentAppendException | ConcurrentDeleteReadException)
    assert "[DELTA_CONCURRENT_" in str(caught.value) and "try the operation again" in str(
        caught.value
    )
    # The winner's delete stands, the loser's did nothing: version 1, rows 2 and 3.
    assert deltalake.DeltaTable(uri).version() == 1
    assert _ids(uri) == [2, 3]
    DeltaTable(uri).delete("id = 2")  # rerun on the new version, it succeeds
    assert _ids(uri) == [3]


def test_update_racing_an_append_fails_without_losing_the_append(tmp_path: Path) -> None:
    uri = _table(tmp_path)
    loser = DeltaTable(uri)
    extra = pa.table({"id": pa.array([9], pa.int64())})
    _raced(loser, uri, lambda u: deltalake.write_deltalake(u, extra, mode="append"))
    with pytest.raises(ConcurrentAppendException, match=r"\[DELTA_CONCURRENT_APPEND\]"):
        loser.update(set={"id": "id + 100"})
    assert _ids(uri) == [1, 2, 3, 9]


def test_overwrite_racing_an_append_fails(tmp_path: Path) -> None:
    uri = _table(tmp_path)
    read_version = deltalake.DeltaTable(uri).version()
    files = write_files(uri, iter([pa.record_batch({"id": pa.array([7], pa.int64())})]), [])
    # Another writer appends after the overwrite read the table, before it commits.
    deltalake.write_deltalake(uri, pa.table({"id": pa.array([4], pa.int64())}), mode="append")
    with pytest.raises(ConcurrentAppendException, match="version 1 \\(WRITE\\)"):
        commit_files(
            uri, files, SCHEMA, overwrite=True, partition_columns=[], read_version=read_version
        )
    assert _ids(uri) == [1, 2, 3, 4]
    # Against the version it read, the overwrite commits; appends never conflict.
    commit_files(uri, files, SCHEMA, overwrite=True, partition_columns=[], read_version=1)
    assert _ids(uri) == [7]
    more = write_files(uri, iter([pa.record_batch({"id": pa.array([8], pa.int64())})]), [])
    commit_files(uri, more, SCHEMA, overwrite=False, partition_columns=[], read_version=0)
    assert _ids(uri) == [7, 8]


def test_classify_and_literals() -> None:
    assert isinstance(
        classify("/t", "Metadata changed since last commit."), MetadataChangedException
    )
    assert type(classify("/t", "something else")) is ConcurrentModificationException
    assert sql_literal(None, "date") == "CAST(NULL AS date)"
    assert sql_literal("o'k", "string") == "CAST('o\\'k' AS string)"
    assert sql_literal(True, "boolean") == "CAST('true' AS boolean)"
    assert sql_literal(date(2024, 1, 2), "date") == "CAST('2024-01-02' AS date)"
    assert sql_literal(datetime(2024, 1, 2, 3, 4, 5), "timestamp") == (
        "CAST('2024-01-02 03:04:05' AS timestamp)"
    )
    assert sql_literal(5, "bigint") == "CAST('5' AS bigint)"
