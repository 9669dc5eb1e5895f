"""Parquet encodings chosen per written file: a dictionary for columns whose values repeat,
plain pages from the start for the rest (never a dictionary that falls back mid-chunk)."""

from __future__ import annotations

from pathlib import Path

import deltalake
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from pyspark.sql.types import DoubleType, LongType, StringType, StructField, StructType

from kiln.driver.delta.files import dictionary_columns, write_files
from kiln.driver.delta.source import commit_files

ROWS = 50_000


def _table() -> pa.Table:
    ids = np.arange(ROWS, dtype=np.int64)
    return pa.table(
        {
            "id": ids,
            "k": ids % 100,
            "v": np.random.default_rng(7).random(ROWS),
            "s": pa.array([f"c{i % 7}" for i in range(ROWS)]),
        }
    )


def test_dictionary_only_where_values_repeat() -> None:
    table = _table()
    assert dictionary_columns(table) == ["k", "s"]
    nested = pa.table({"l": pa.array([[1]] * 10), "b": pa.array([True] * 10)})
    assert dictionary_columns(nested) == []
    assert dictionary_columns(pa.table({"e": pa.array([], pa.int64())})) == []
    as_dictionary = pa.table({"d": pa.array(["x", "y"] * 5).dictionary_encode()})
    assert dictionary_columns(as_dictionary) == ["d"]


def test_written_files_have_no_fallback_chunks(tmp_path: Path) -> None:
    uri = str(tmp_path / "t")
    table = _table()
    files = write_files(uri, iter(table.to_batches()), [])
    schema = StructType(
        [
            StructField("id", LongType()),
            StructField("k", LongType()),
            StructField("v", DoubleType()),
            StructField("s", StringType()),
        ]
    )
    commit_files(uri, files, schema, overwrite=False, partition_columns=[])
    (written,) = files
    meta = pq.ParquetFile(tmp_path / "t" / written.path).metadata
    chunks = {
        meta.row_group(0).column(i).path_in_schema: meta.row_group(0).column(i)
        for i in range(meta.num_columns)
    }
    assert not chunks["id"].has_dictionary_page and not chunks["v"].has_dictionary_page
    assert chunks["k"].has_dictionary_page and chunks["s"].has_dictionary_page
    assert "RLE_DICTIONARY" not in chunks["id"].encodings
    back = deltalake.DeltaTable(uri).to_pyarrow_table().sort_by("id")
    assert back.equals(table)
