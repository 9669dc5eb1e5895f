"""Real conflicts between Delta writers, made deterministic: a conflicting commit lands between
one writer's read of the table and its commit (a DELETE's rewrite is done here with pyarrow,
as the executors do it, and committed by `dml_commit.commit_rewrite`). The loser fails with
Databricks' concurrent-modification wording, the winner's commit stays, and no row is lost;
partition values become typed SQL literals for Spark's Parquet reader."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

import deltalake
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark.sql.types import LongType, StructField, StructType

from kiln.driver.delta.conflicts import (
    ConcurrentAppendException,
    ConcurrentDeleteReadException,
    ConcurrentModificationException,
    MetadataChangedException,
    classify,
)
from kiln.driver.delta.dml_commit import commit_rewrite, read_snapshot
from kiln.driver.delta.dml_plan import condition_filters, prune
from kiln.driver.delta.files import write_files
from kiln.driver.delta.scan import sql_literal
from kiln.driver.delta.source import commit_files

SCHEMA = StructType([StructField("id", LongType())])


def _table(tmp_path: Path) -> str:
    uri = str(tmp_path / "t")
    deltalake.write_deltalake(uri, pa.table({"id": pa.array([1, 2, 3], pa.int64())}))
    return uri


def _ids(uri: str) -> list[int]:
    return sorted(deltalake.DeltaTable(uri).to_pandas()["id"].tolist())


def _delete(uri: str, doomed: int, conflicting: Any, *, condition: str | None = None) -> None:
    """A DELETE of `id = doomed` as the executors do it (the files holding the row rewritten
    without it), with `conflicting` committed between its read and its commit."""
    snapshot = read_snapshot(deltalake.DeltaTable(uri))
    touched = [f for f in snapshot.files if doomed in _file_ids(f.data.uri)]
    kept = [i for f in touched for i in _file_ids(f.data.uri) if i != doomed]
    batches = [pa.record_batch({"id": pa.array(kept, pa.int64())})] if kept else []
    written = write_files(uri, iter(batches), [])
    filters = condition_filters(condition or f"id = {doomed}", ["id"])
    conflicting(uri)
    commit_rewrite(
        snapshot,
        touched,
        written,
        operation="DELETE",
        parameters={"predicate": f'["{condition or f"id = {doomed}"}"]'},
        metrics={"numDeletedRows": 1},
        read=prune(snapshot.files, filters, []),
        filters=filters,
    )


def _file_ids(file_uri: str) -> list[int]:
    return [int(i) for i in pq.read_table(file_uri.removeprefix("file://"))["id"].to_pylist()]


def test_delete_racing_a_delete_fails_and_keeps_the_winner(tmp_path: Path) -> None:
    uri = _table(tmp_path)
    deltalake.write_deltalake(uri, pa.table({"id": pa.array([4], pa.int64())}), mode="append")
    # Another DELETE removed the file this one read (and rewrites): it fails.
    with pytest.raises(ConcurrentDeleteReadException) as caught:
        _delete(uri, 2, lambda u: deltalake.DeltaTable(u).delete("id <= 3"))
    assert "[DELTA_CONCURRENT_DELETE_READ]" in str(caught.value)
    assert "try the operation again" in str(caught.value) and "version 2 (DELETE)" in str(
        caught.value
    )
    # The winner's delete stands, the loser's did nothing.
    assert deltalake.DeltaTable(uri).version() == 2
    assert _ids(uri) == [4]
    deltalake.write_deltalake(uri, pa.table({"id": pa.array([1, 2, 3], pa.int64())}), mode="append")
    # One that rewrote the file with rows this one matches: they were added, unread.
    with pytest.raises(ConcurrentAppendException, match="version 4 \\(DELETE\\)"):
        _delete(uri, 2, lambda u: deltalake.DeltaTable(u).delete("id = 1"))
    assert _ids(uri) == [2, 3, 4]
    # One that removed a file this one's statistics skipped: no conflict.
    _delete(uri, 2, lambda u: deltalake.DeltaTable(u).delete("id = 4"))
    assert _ids(uri) == [3]
    history = deltalake.DeltaTable(uri).history(1)[0]
    assert history["kiln.operation"] == "DELETE" and history["readVersion"] == 4
    assert history["operationParameters"]["predicate"] == '["id = 2"]'


def test_delete_and_blind_appends_by_isolation_level(tmp_path: Path) -> None:
    uri = _table(tmp_path)
    extra = pa.table({"id": pa.array([2], pa.int64())})
    # WriteSerializable (the default): a blind append does not conflict; its row 2 stays.
    _delete(uri, 2, lambda u: deltalake.write_deltalake(u, extra, mode="append"))
    assert _ids(uri) == [1, 2, 3]
    deltalake.DeltaTable(uri).alter.set_table_properties({"delta.isolationLevel": "Serializable"})
    # Serializable: an append of rows the condition matches conflicts; other rows do not.
    three = pa.table({"id": pa.array([3], pa.int64())})
    with pytest.raises(ConcurrentAppendException, match=r"\[DELTA_CONCURRENT_APPEND\]"):
        _delete(uri, 3, lambda u: deltalake.write_deltalake(u, three, mode="append"))
    assert _ids(uri) == [1, 2, 3, 3]
    far = pa.table({"id": pa.array([90], pa.int64())})
    _delete(uri, 3, lambda u: deltalake.write_deltalake(u, far, mode="append"))
    assert _ids(uri) == [1, 2, 90]


def test_delete_racing_an_update_or_a_schema_change_fails(tmp_path: Path) -> None:
    uri = _table(tmp_path)
    # A concurrent UPDATE read the table: the rows it adds may match, so they conflict.
    with pytest.raises(ConcurrentAppendException, match="UPDATE"):
        _delete(
            uri,
            3,
            lambda u: deltalake.DeltaTable(u).update({"id": "3"}, predicate="id = 1"),
            condition="id >= 3",
        )
    with pytest.raises(MetadataChangedException):
        _delete(
            uri,
            3,
            lambda u: deltalake.DeltaTable(u).alter.add_columns(
                [deltalake.Field("x", "string", nullable=True)]
            ),
        )
    assert sorted(_ids(uri)) == [2, 3, 3]


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
