"""Tables benchmark: each figure beside its baseline, measured in the same run (medians).

- Scan: a 10-million-row, 3-column Delta table (100 files) aggregated through Spark on a
  single-node cluster against reading the same files with pyarrow in one process; target
  ≥ 0.5x the throughput. The table is written by Kiln's own writer (its Parquet encodings are
  what a user's table gets); each reader scans 3 times untimed first, as on a warm cluster.
  Both of Kiln's readers run side by side: Spark's Parquet reader on the files delta-rs
  plans (what `spark.table` uses) and the `delta` Python source.
- Selective query: `id < 100000` (1% of the files by their statistics); the bytes Spark's
  scan read (its input metrics) against a full scan's, and the bytes the Python source plans
  to read (its `planned_bytes`); target ≤ 5%.
- 1-row append: Kiln's write path (executor Parquet file + one driver commit) against a
  direct delta-rs `write_deltalake` append; target ≤ 3x. The end-to-end `saveAsTable` on the
  cluster (a Spark job plus the commit) is printed too.

Run with `.venv/bin/python -m bench.tables`.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from databricks.sdk import WorkspaceClient
from databricks.sdk.service.compute import Language, ResultType

from bench.foundation import _start_kiln, _stop

ROWS = int(os.environ.get("KILN_BENCH_TABLE_ROWS", str(10_000_000)))
FILES = 100
RUNS = int(os.environ.get("KILN_BENCH_TABLE_RUNS", "5"))
WARMUP = 3
WAIT = timedelta(minutes=10)


def _run(w: WorkspaceClient, cid: str, ctx: str, code: str) -> Any:
    """Run code whose last line is an expression in the context; its JSON value."""
    *body, last = code.strip().splitlines()
    command = "\n".join([*body, "import json as _j", f"print(_j.dumps({last}))"])
    done = w.command_execution.execute_and_wait(
        cluster_id=cid, context_id=ctx, command=command, language=Language.PYTHON, timeout=WAIT
    )
    assert done.results is not None
    if done.results.result_type == ResultType.ERROR:
        raise RuntimeError(done.results.cause)
    return json.loads(str(done.results.data).strip().splitlines()[-1])


def _pyarrow_scan(uris: list[str]) -> float:
    start = time.perf_counter()
    table = pq.ParquetDataset([u.removeprefix("file://") for u in uris]).read()
    for name in table.column_names:
        pa.compute.sum(table.column(name))
    return time.perf_counter() - start


# Bytes read by the Spark jobs of an action (a classic context).
INPUT_BYTES = (
    "from kiln.driver.delta.metrics import input_bytes as _ib\n"
    "def _input_bytes(action):\n"
    "    return _ib(spark, action)\n"
)


def _planned_bytes(location: str, filters: list[Any]) -> int:
    from pyspark.sql.types import DoubleType, LongType, StructField, StructType

    from kiln.driver.delta.source import DeltaReader

    schema = StructType(
        [StructField(n, t) for n, t in (("id", LongType()), ("k", LongType()), ("v", DoubleType()))]
    )
    reader = DeltaReader({"path": location}, schema)
    list(reader.pushFilters(filters))
    return reader.planned_bytes()


def _direct_append(location: str) -> float:
    from deltalake import write_deltalake

    row = pa.table(
        {"id": pa.array([-1], pa.int64()), "k": pa.array([0], pa.int64()), "v": pa.array([0.0])}
    )
    start = time.perf_counter()
    write_deltalake(location, row, mode="append")
    return time.perf_counter() - start


def _kiln_append(location: str) -> float:
    from pyspark.sql.types import DoubleType, LongType, StructField, StructType

    from kiln.driver.delta.files import write_files
    from kiln.driver.delta.source import commit_files

    schema = StructType(
        [StructField(n, t) for n, t in (("id", LongType()), ("k", LongType()), ("v", DoubleType()))]
    )
    batch = pa.record_batch(
        {"id": pa.array([-2], pa.int64()), "k": pa.array([0], pa.int64()), "v": pa.array([0.0])}
    )
    start = time.perf_counter()
    files = write_files(location, iter([batch]), [])
    commit_files(location, files, schema, overwrite=False, partition_columns=[])
    return time.perf_counter() - start


def main() -> None:
    """Start Kiln and a single-node cluster, build the table, print each figure."""
    from pyspark.sql.datasource import LessThan

    with tempfile.TemporaryDirectory(prefix="kiln-bench-tables-") as tmp:
        data = Path(tmp) / "data"
        proc, url, _ = _start_kiln(data)
        try:
            token = (data / "admin-token").read_text().strip()
            w = WorkspaceClient(host=url, token=token, auth_type="pat")
            cores = os.cpu_count() or 2
            cid = w.clusters.create_and_wait(
                cluster_name="bench-tables",
                spark_version="16.4.x-scala2.13",
                num_workers=0,
                spark_conf={
                    "spark.master": f"local[{cores}]",
                    "spark.databricks.cluster.profile": "singleNode",
                },
                custom_tags={"ResourceClass": "SingleNode"},
                timeout=WAIT,
            ).cluster_id
            assert cid
            ctx = w.command_execution.create_and_wait(
                cluster_id=cid, language=Language.PYTHON, timeout=WAIT
            ).id
            assert ctx
            _run(
                w,
                cid,
                ctx,
                (
                    f"spark.range(0, {ROWS}, 1, {FILES}).selectExpr('id', 'id % 100 AS k', "
                    "'rand() AS v').write.format('delta').saveAsTable('main.default.bench_scan')\n"
                    "1"
                ),
            )
            info = w.tables.get("main.default.bench_scan")
            location = str(info.storage_location)
            from deltalake import DeltaTable

            uris = DeltaTable(location).file_uris()
            readers = {
                "Spark Parquet reader": "spark.table('main.default.bench_scan')",
                "delta Python source": (
                    "spark.read.format('delta').option('kiln.pythonSource', 'true')"
                    f".load({location!r})"
                ),
            }
            times: dict[str, list[float]] = {name: [] for name in [*readers, "pyarrow"]}
            # A warm cluster: each reader's first scans (class loading, the JIT compiling the
            # scan's hot loops) are not timed.
            for _ in range(WARMUP):
                for frame in readers.values():
                    _run(
                        w,
                        cid,
                        ctx,
                        f"{frame}.selectExpr('sum(id)', 'sum(k)', 'sum(v)').collect()\n1",
                    )
                _pyarrow_scan(uris)
            for _ in range(RUNS):
                for name, frame in readers.items():
                    times[name].append(
                        _run(
                            w,
                            cid,
                            ctx,
                            (
                                "import time as _t\n_s = _t.perf_counter()\n"
                                f"{frame}.selectExpr('sum(id)', 'sum(k)', 'sum(v)').collect()\n"
                                "_t.perf_counter() - _s"
                            ),
                        )
                    )
                times["pyarrow"].append(_pyarrow_scan(uris))
            arrow_s = statistics.median(times["pyarrow"])
            print(f"scan {ROWS:,} rows x 3 cols ({len(uris)} files), medians of {RUNS}")
            print(
                f"  pyarrow, one process    : {arrow_s:7.3f} s  "
                f"{ROWS / arrow_s / 1e6:7.1f} M rows/s"
            )
            for name in readers:
                took = statistics.median(times[name])
                print(
                    f"  {name:24}: {took:7.3f} s  {ROWS / took / 1e6:7.1f} M rows/s  "
                    f"ratio {arrow_s / took:5.2f}x  (target >= 0.5x)"
                )
            print("  (spark.table and SQL read with the Spark Parquet reader)")

            table = "spark.table('main.default.bench_scan')"
            cut = ROWS // FILES
            full_read, selective_read = _run(
                w,
                cid,
                ctx,
                (
                    f"{INPUT_BYTES}\n"
                    f"[_input_bytes(lambda: {table}.selectExpr('sum(id)', 'sum(k)', 'sum(v)')"
                    f".collect()), _input_bytes(lambda: {table}.filter('id < {cut}').count())]"
                ),
            )
            full = _planned_bytes(location, [])
            selective = _planned_bytes(location, [LessThan(("id",), cut)])
            rows = _run(w, cid, ctx, f"{table}.filter('id < {cut}').count()")
            print(f"selective query id < {cut} ({rows:,} rows)")
            print(
                f"  Spark Parquet reader, bytes read (input metrics): {selective_read:,} of "
                f"{full_read:,}: {selective_read / full_read:6.2%}  (target <= 5%)"
            )
            print(
                f"  delta Python source, planned bytes             : {selective:,} of {full:,}: "
                f"{selective / full:6.2%}  (target <= 5%)"
            )

            direct, kiln, cluster = [], [], []
            for _ in range(max(RUNS, 5)):
                direct.append(_direct_append(location))
                kiln.append(_kiln_append(location))
                cluster.append(
                    _run(
                        w,
                        cid,
                        ctx,
                        (
                            "import time as _t\n_s = _t.perf_counter()\n"
                            "spark.createDataFrame([(-3, 0, 0.0)], 'id bigint, k bigint, v double')"
                            ".write.mode('append').saveAsTable('main.default.bench_scan')\n"
                            "_t.perf_counter() - _s"
                        ),
                    )
                )
            d, k, c = (statistics.median(x) for x in (direct, kiln, cluster))
            print("1-row append")
            print(f"  delta-rs write_deltalake     : {d * 1000:7.1f} ms")
            print(
                f"  Kiln file + commit           : {k * 1000:7.1f} ms  ratio {k / d:5.2f}x "
                "(target <= 3x)"
            )
            print(
                f"  saveAsTable on the cluster   : {c * 1000:7.1f} ms  ratio {c / d:5.2f}x "
                "(a Spark job + the commit)"
            )
            w.clusters.permanent_delete(cid)
        finally:
            _stop(proc)


if __name__ == "__main__":
    main()
