"""The `delta` source's pure parts without Spark: files written with statistics and committed
once, planned from the log, pruned by filters, grouped and read back; SQL table references."""

from __future__ import annotations

from pathlib import Path

import deltalake
import pyarrow as pa
from pyspark.sql.datasource import EqualTo, GreaterThan, In, IsNull, LessThan, Not
from pyspark.sql.types import LongType, StringType, StructField, StructType

from kiln.driver.delta.files import group_files, open_table, plan_files, read_group, write_files
from kiln.driver.delta.pruning import may_match
from kiln.driver.delta.source import commit_files
from kiln.driver.delta.sql_router import table_references, tokenize

SCHEMA = StructType(
    [StructField("id", LongType()), StructField("p", StringType()), StructField("s", StringType())]
)


def _write(uri: str, start: int, count: int, overwrite: bool = False) -> None:
    ids = list(range(start, start + count))
    batch = pa.record_batch(
        {"id": ids, "p": ["a" if i % 2 else "b" for i in ids], "s": [f"v{i}" for i in ids]}
    )
    files = write_files(uri, iter([batch]), ["p"])
    commit_files(uri, files, SCHEMA, overwrite=overwrite, partition_columns=["p"])


def test_write_commit_plan_prune_and_read(tmp_path: Path) -> None:
    uri = str(tmp_path / "t")
    _write(uri, 0, 10)
    _write(uri, 100, 10)
    table = open_table(uri)
    assert table.version() == 1
    assert len(deltalake.DeltaTable(uri).to_pandas()) == 20
    files = plan_files(table)
    assert len(files) == 4 and all(f.num_records == 5 for f in files)
    # Partition values are exact; statistics prune conservatively.
    assert sum(may_match(f, EqualTo(("p",), "a"), ["p"]) for f in files) == 2
    assert sum(may_match(f, GreaterThan(("id",), 50), ["p"]) for f in files) == 2
    assert sum(may_match(f, LessThan(("id",), 0), ["p"]) for f in files) == 0
    assert sum(may_match(f, In(("id",), (3, 104)), ["p"]) for f in files) == 4
    assert sum(may_match(f, IsNull(("p",)), ["p"]) for f in files) == 0
    assert sum(may_match(f, Not(EqualTo(("p",), "a")), ["p"]) for f in files) == 2
    # An unknown column or a type clash keeps the file.
    assert all(may_match(f, EqualTo(("zz",), 1), ["p"]) for f in files)
    assert all(may_match(f, GreaterThan(("id",), "x"), ["p"]) for f in files)
    groups = group_files(files, target=1)
    assert len(groups) == 4
    arrow = pa.schema([("s", pa.string()), ("p", pa.string())])
    rows = [r for g in groups for b in read_group(g, arrow, ["p"]) for r in b.to_pylist()]
    assert len(rows) == 20 and {"s": "v3", "p": "a"} in rows
    # An overwrite replaces every file in one commit; time travel still sees the old ones.
    _write(uri, 0, 2, overwrite=True)
    assert len(deltalake.DeltaTable(uri).to_pandas()) == 2
    assert len(plan_files(open_table(uri, version=1))) == 4
    assert group_files([]) and group_files([])[0].files == []


def test_table_references() -> None:
    def names(sql: str) -> list[tuple[list[str], int | None, str | None]]:
        return [(r.parts, r.version, r.timestamp) for r in table_references(tokenize(sql))]

    assert names("SELECT * FROM main.default.t") == [(["main", "default", "t"], None, None)]
    assert names("select a from `My`.s.t VERSION AS OF 3 x join u on x.a = u.a") == [
        (["my", "s", "t"], 3, None),
        (["u"], None, None),
    ]
    assert names("SELECT * FROM t TIMESTAMP AS OF '2024-01-01', s.u AS b") == [
        (["t"], None, "2024-01-01"),
        (["s", "u"], None, None),
    ]
    assert names("SELECT * FROM t@v2") == [(["t"], 2, None)]
    # CTEs, subqueries, table functions and strings are not tables.
    assert names("WITH c AS (SELECT 1) SELECT * FROM c, range(3) WHERE 'FROM x' = ''") == []
    assert names("SELECT * FROM (SELECT * FROM inner_t) q") == [(["inner_t"], None, None)]
