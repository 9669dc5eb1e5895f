"""Delta tables on a single-node cluster through databricks-sdk command execution: the
`delta` source (DataFrames, saveAsTable, time travel), catalog SQL, the DeltaTable API and
temporary views; read back from outside with deltalake. One server and one cluster (classic
contexts) serve the module."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import deltalake
import pytest
from compute_support import (
    compute_env,
    running_compute_server,
    single_node_cluster,
)
from databricks.sdk import WorkspaceClient
from databricks.sdk.service.compute import (
    ClusterDetails,
    CommandStatus,
    CommandStatusResponse,
    Language,
    ResultType,
)

from support import Server

CMD_WAIT = timedelta(minutes=4)


@pytest.fixture(scope="module")
def compute_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("tables") / "data"
    with running_compute_server(data, compute_env()) as srv:
        yield srv


@pytest.fixture(scope="module")
def cid(w: WorkspaceClient) -> str:
    cluster: ClusterDetails = single_node_cluster(w, "tables")
    assert cluster.cluster_id is not None
    return cluster.cluster_id


def _context(w: WorkspaceClient, cid: str, language: Language = Language.PYTHON) -> str:
    created = w.command_execution.create_and_wait(
        cluster_id=cid, language=language, timeout=CMD_WAIT
    )
    assert created.id
    return created.id


@pytest.fixture(scope="module")
def ctx(w: WorkspaceClient, cid: str) -> str:
    return _context(w, cid)


def run(
    w: WorkspaceClient, cid: str, ctx: str, command: str, language: Language = Language.PYTHON
) -> CommandStatusResponse:
    return w.command_execution.execute_and_wait(
        cluster_id=cid, context_id=ctx, command=command, language=language, timeout=CMD_WAIT
    )


def value(w: WorkspaceClient, cid: str, ctx: str, expression: str) -> Any:
    """The JSON value of a Python expression evaluated in the context."""
    response = run(w, cid, ctx, f"import json as _j\nprint(_j.dumps({expression}, default=str))")
    assert response.status == CommandStatus.FINISHED, response
    assert response.results is not None
    assert response.results.result_type == ResultType.TEXT, response.results
    return json.loads(str(response.results.data).strip().splitlines()[-1])


def ok(w: WorkspaceClient, cid: str, ctx: str, code: str) -> None:
    response = run(w, cid, ctx, code)
    assert response.results is not None
    assert response.results.result_type != ResultType.ERROR, response.results.cause


def sql(w: WorkspaceClient, cid: str, ctx: str, statement: str) -> list[list[Any]]:
    """A %sql-style command's table."""
    response = run(w, cid, ctx, statement, Language.SQL)
    assert response.results is not None
    assert response.results.result_type != ResultType.ERROR, response.results.cause
    return (
        list(response.results.data or [])
        if response.results.result_type == ResultType.TABLE
        else []
    )


def error(
    w: WorkspaceClient, cid: str, ctx: str, code: str, language: Language = Language.PYTHON
) -> str:
    response = run(w, cid, ctx, code, language)
    assert response.results is not None
    assert response.results.result_type == ResultType.ERROR, response.results
    return f"{response.results.summary}\n{response.results.cause}"


def location(w: WorkspaceClient, name: str) -> str:
    info = w.tables.get(name)
    assert info.storage_location
    return info.storage_location


# --- DataFrames ------------------------------------------------------------------------------


def test_dataframes_save_read_and_time_travel(w: WorkspaceClient, cid: str, ctx: str) -> None:
    ok(
        w,
        cid,
        ctx,
        "df = spark.range(100).selectExpr('id', 'id % 4 AS p', 'cast(id AS string) AS s')\n"
        "df.write.format('delta').partitionBy('p').saveAsTable('main.default.events')",
    )
    assert value(w, cid, ctx, "spark.read.table('main.default.events').count()") == 100
    ok(
        w,
        cid,
        ctx,
        "spark.range(100, 150).selectExpr('id', 'id % 4 AS p', 'cast(id AS string) AS s')"
        ".write.mode('append').saveAsTable('events')",
    )
    assert value(w, cid, ctx, "spark.table('events').count()") == 150
    assert value(w, cid, ctx, "spark.table('default.events').filter('p = 1').count()") == 38
    # Time travel with the reader's options, on a name and on a path.
    assert value(w, cid, ctx, "spark.read.option('versionAsOf', 0).table('events').count()") == 100
    loc = location(w, "main.default.events")
    assert (
        value(
            w,
            cid,
            ctx,
            f"spark.read.format('delta').option('versionAsOf', 1).load('{loc}').count()",
        )
        == 150
    )
    stamp = deltalake.DeltaTable(loc).history()[-1]["timestamp"]
    iso = repr(datetime.fromtimestamp(stamp / 1000, UTC).isoformat())
    assert (
        value(
            w,
            cid,
            ctx,
            f"spark.read.format('delta').option('timestampAsOf', {iso}).load('{loc}').count()",
        )
        == 100
    )
    # Plain Python on the very same files, at the same versions.
    assert len(deltalake.DeltaTable(loc).to_pandas()) == 150
    assert len(deltalake.DeltaTable(loc, version=0).to_pandas()) == 100
    assert sorted(deltalake.DeltaTable(loc).metadata().partition_columns) == ["p"]
    # Overwrite, then a path in DBFS written and read with dbfs:/.
    ok(
        w,
        cid,
        ctx,
        "spark.range(7).selectExpr('id', '0L AS p', \"'x' AS s\").write.mode('overwrite')"
        ".saveAsTable('events')",
    )
    assert value(w, cid, ctx, "spark.table('events').count()") == 7
    ok(w, cid, ctx, "spark.range(5).write.format('delta').save('dbfs:/delta/plain')")
    assert value(w, cid, ctx, "spark.read.format('delta').load('dbfs:/delta/plain').count()") == 5
    # Columns come from the log.
    cols = w.tables.get("main.default.events").columns or []
    assert [(c.name, c.type_text) for c in cols] == [
        ("id", "bigint"),
        ("p", "bigint"),
        ("s", "string"),
    ]


def test_dataframe_bad_input_leaves_tables_unchanged(
    w: WorkspaceClient, cid: str, ctx: str
) -> None:
    ok(w, cid, ctx, "spark.range(3).write.saveAsTable('main.default.strict')")
    loc = location(w, "main.default.strict")
    missing = error(w, cid, ctx, "spark.read.table('main.default.nope')")
    assert (
        "[TABLE_OR_VIEW_NOT_FOUND] The table or view `main`.`default`.`nope` cannot be found"
        in missing
    )
    assert "TABLE_OR_VIEW_NOT_FOUND" in error(w, cid, ctx, "spark.table('nocat.default.t')")
    exists = error(w, cid, ctx, "spark.range(3).write.saveAsTable('strict')")
    assert "TABLE_OR_VIEW_ALREADY_EXISTS" in exists
    mismatch = error(
        w,
        cid,
        ctx,
        "spark.range(3).selectExpr('cast(id AS string) AS id').write.mode('append')"
        ".saveAsTable('strict')",
    )
    assert "schema mismatch" in mismatch
    extra = "spark.range(2).selectExpr('id', 'id AS extra').write.mode('append')"
    assert "mergeSchema" in error(w, cid, ctx, f"{extra}.saveAsTable('strict')")
    assert deltalake.DeltaTable(loc).version() == 0
    ok(w, cid, ctx, f"{extra}.option('mergeSchema', 'true').saveAsTable('strict')")
    assert value(w, cid, ctx, "spark.table('strict').columns") == ["id", "extra"]
    past = error(w, cid, ctx, "spark.read.option('versionAsOf', 99).table('strict').count()")
    assert "Cannot time travel Delta table to version 99" in past
    assert value(w, cid, ctx, "spark.table('strict').count()") == 5


# --- SQL -------------------------------------------------------------------------------------


def test_sql_ddl_dml_and_time_travel(w: WorkspaceClient, cid: str, ctx: str) -> None:
    sql(
        w,
        cid,
        ctx,
        "CREATE TABLE main.default.sales (id BIGINT, city STRING, amount DOUBLE) "
        "USING delta PARTITIONED BY (city)",
    )
    sql(w, cid, ctx, "INSERT INTO main.default.sales VALUES (1, 'oslo', 10.0), (2, 'rome', 20.0)")
    sql(w, cid, ctx, "INSERT INTO sales SELECT 3, 'oslo', 30.0")
    assert sql(w, cid, ctx, "SELECT id, city, amount FROM main.default.sales ORDER BY id") == [
        [1, "oslo", 10.0],
        [2, "rome", 20.0],
        [3, "oslo", 30.0],
    ]
    assert sql(w, cid, ctx, "SELECT count(*) FROM sales VERSION AS OF 1") == [[2]]
    assert sql(w, cid, ctx, "SELECT count(*) FROM sales@v0") == [[0]]
    # Several statements in one command; the last one's result shows.
    assert sql(
        w,
        cid,
        ctx,
        "CREATE TABLE big AS SELECT * FROM sales WHERE amount > 15;\nSELECT sum(amount) FROM big",
    ) == [[50.0]]
    # UPDATE and DELETE run as Spark jobs with Spark SQL conditions (date_add is Spark's, not
    # DataFusion's); each returns Databricks' row count; one that matches nothing commits nothing.
    assert sql(
        w,
        cid,
        ctx,
        "UPDATE sales SET amount = amount * 2 "
        "WHERE city = 'oslo' AND date_add(DATE'2024-01-01', CAST(id AS INT)) > DATE'2024-01-01'",
    ) == [[2]]
    assert sql(w, cid, ctx, "UPDATE sales SET amount = 0 WHERE id > 100") == [[0]]
    assert sql(w, cid, ctx, "DELETE FROM sales WHERE id = 2") == [[1]]
    assert sql(w, cid, ctx, "DELETE FROM sales WHERE concat_ws('-', city, 'x') = 'no-x'") == [[0]]
    merge = (
        "MERGE INTO sales AS t USING (SELECT 3 AS id, 'oslo' AS city, 1.0 AS amount "
        "UNION ALL SELECT 4, 'rome', 4.0) AS s ON t.id = s.id "
        "WHEN MATCHED THEN UPDATE SET amount = s.amount WHEN NOT MATCHED THEN INSERT *"
    )
    # Databricks' row: affected, updated, deleted, inserted.
    assert sql(w, cid, ctx, merge) == [[2, 1, 0, 1]]
    # Two source rows for one target row: Databricks' error, and no commit.
    twice = merge.replace("SELECT 4, 'rome', 4.0", "SELECT 3, 'oslo', 2.0")
    assert "DELTA_MULTIPLE_SOURCE_ROW_MATCHING_TARGET_ROW_IN_MERGE" in error(
        w, cid, ctx, twice, Language.SQL
    )
    assert sql(w, cid, ctx, "SELECT id, amount FROM sales ORDER BY id") == [
        [1, 20.0],
        [3, 1.0],
        [4, 4.0],
    ]
    ops = value(w, cid, ctx, "[r.operation for r in spark.sql('DESCRIBE HISTORY sales').collect()]")
    assert ops == ["MERGE", "DELETE", "UPDATE", "WRITE", "WRITE", "CREATE TABLE"]
    deleted = value(
        w,
        cid,
        ctx,
        "spark.sql('DESCRIBE HISTORY sales').collect()[1].asDict()",
    )
    assert deleted["operationParameters"] == {"predicate": '["id = 2"]'}
    assert deleted["operationMetrics"]["numDeletedRows"] == "1"
    outside = deltalake.DeltaTable(location(w, "main.default.sales")).history()
    assert [h.get("kiln.operation") for h in outside][1:3] == ["DELETE", "UPDATE"]
    detail = value(w, cid, ctx, "spark.sql('DESCRIBE DETAIL main.default.sales').first().asDict()")
    assert detail["format"] == "delta" and detail["partitionColumns"] == ["city"]
    described = sql(w, cid, ctx, "DESCRIBE TABLE EXTENDED sales")
    assert described[:3] == [
        ["id", "bigint", None],
        ["city", "string", None],
        ["amount", "double", None],
    ]
    assert ["Type", "MANAGED", ""] in described and ["Provider", "delta", ""] in described
    # OPTIMIZE, VACUUM and RESTORE through delta-rs; the table reads the same after each.
    sql(w, cid, ctx, "OPTIMIZE sales")
    sql(w, cid, ctx, "VACUUM sales")
    sql(w, cid, ctx, "RESTORE TABLE sales TO VERSION AS OF 2")
    assert sql(w, cid, ctx, "SELECT id FROM sales ORDER BY id") == [[1], [2], [3]]
    assert sql(w, cid, ctx, "SHOW CATALOGS") == [["hive_metastore"], ["main"]]
    assert ["default"] in sql(w, cid, ctx, "SHOW SCHEMAS IN main")
    tables = {row[1] for row in sql(w, cid, ctx, "SHOW TABLES IN main.default")}
    assert {"sales", "big"} <= tables
    assert {"sales", "big"} <= {
        t.name for t in w.tables.list(catalog_name="main", schema_name="default")
    }
    loc = location(w, "main.default.sales")
    assert len(deltalake.DeltaTable(loc).to_pandas()) == 3
    sql(w, cid, ctx, "DROP TABLE big")
    assert "big" not in {t.name for t in w.tables.list(catalog_name="main", schema_name="default")}
    # An external table at a DBFS location, registered and seen by the API.
    sql(w, cid, ctx, "CREATE TABLE ext_sales (id BIGINT) USING delta LOCATION 'dbfs:/ext/sales'")
    sql(w, cid, ctx, "INSERT INTO ext_sales VALUES (7)")
    assert w.tables.get("main.default.ext_sales").table_type is not None
    sql(w, cid, ctx, "DROP TABLE ext_sales")
    assert value(w, cid, ctx, "spark.read.format('delta').load('dbfs:/ext/sales').count()") == 1


def test_sql_bad_input(w: WorkspaceClient, cid: str, ctx: str) -> None:
    sql(w, cid, ctx, "CREATE TABLE IF NOT EXISTS guard (a INT) USING delta")
    sql(w, cid, ctx, "INSERT INTO guard VALUES (1)")
    loc = location(w, "main.default.guard")
    assert "TABLE_OR_VIEW_ALREADY_EXISTS" in error(
        w, cid, ctx, "CREATE TABLE guard (a INT) USING delta", Language.SQL
    )
    sql(w, cid, ctx, "CREATE TABLE IF NOT EXISTS guard (a INT) USING delta")
    missing = error(w, cid, ctx, "SELECT * FROM main.default.absent", Language.SQL)
    assert (
        "[TABLE_OR_VIEW_NOT_FOUND] The table or view `main`.`default`.`absent` cannot be found"
        in missing
    )
    assert "TABLE_OR_VIEW_NOT_FOUND" in error(
        w, cid, ctx, "DROP TABLE main.default.absent", Language.SQL
    )
    sql(w, cid, ctx, "DROP TABLE IF EXISTS main.default.absent")
    outside = error(
        w,
        cid,
        ctx,
        "CREATE TABLE escape (a INT) USING delta LOCATION 's3://bucket/x'",
        Language.SQL,
    )
    assert "outside the allowed storage" in outside
    assert not w.tables.exists("main.default.escape").table_exists
    assert "version 9" in error(w, cid, ctx, "SELECT * FROM guard VERSION AS OF 9", Language.SQL)
    assert "Cannot write" in error(w, cid, ctx, "INSERT INTO guard VALUES (1, 2)", Language.SQL)
    assert "CSV" in error(w, cid, ctx, "CREATE TABLE c1 (a INT) USING csv", Language.SQL).upper()
    assert sql(w, cid, ctx, "SELECT * FROM guard") == [[1]]
    assert deltalake.DeltaTable(loc).version() == 1


# --- DeltaTable API and views ----------------------------------------------------------------


def test_delta_table_api(w: WorkspaceClient, cid: str, ctx: str) -> None:
    ok(
        w,
        cid,
        ctx,
        "from delta.tables import DeltaTable\n"
        "spark.range(5).selectExpr('id', 'id * 10 AS v').write.saveAsTable('main.default.people')\n"
        "dt = DeltaTable.forName(spark, 'main.default.people')",
    )
    ok(
        w,
        cid,
        ctx,
        "updates = spark.range(3, 8).selectExpr('id', 'id * 100 AS v')\n"
        "(dt.alias('t').merge(updates.alias('s'), 't.id = s.id')\n"
        " .whenMatchedUpdate(set={'v': 's.v'})\n"
        " .whenNotMatchedInsertAll()\n"
        " .execute())",
    )
    rows = value(w, cid, ctx, "sorted(tuple(r) for r in dt.toDF().collect())")
    assert rows == [[0, 0], [1, 10], [2, 20], [3, 300], [4, 400], [5, 500], [6, 600], [7, 700]]
    ok(w, cid, ctx, "dt.update('id = 0', {'v': '-1'})\ndt.delete('id >= 6')")
    assert value(w, cid, ctx, "dt.toDF().count()") == 6
    ops = value(w, cid, ctx, "[r.operation for r in dt.history().collect()]")
    assert ops == ["DELETE", "UPDATE", "MERGE", "WRITE"] or ops[:3] == ["DELETE", "UPDATE", "MERGE"]
    ok(w, cid, ctx, "dt.optimize().executeCompaction()")
    ok(w, cid, ctx, "dt.restoreToVersion(0)")
    assert value(w, cid, ctx, "DeltaTable.forName(spark, 'people').toDF().count()") == 5
    loc = location(w, "main.default.people")
    assert value(w, cid, ctx, f"DeltaTable.forPath(spark, '{loc}').toDF().count()") == 5
    ok(w, cid, ctx, "dt.vacuum()")
    assert len(deltalake.DeltaTable(loc).to_pandas()) == 5
    assert "TABLE_OR_VIEW_NOT_FOUND" in error(w, cid, ctx, "DeltaTable.forName(spark, 'nobody')")
    assert "version" in error(w, cid, ctx, "dt.restoreToVersion(1000)")


def test_temporary_and_global_views(w: WorkspaceClient, cid: str, ctx: str) -> None:
    ok(
        w,
        cid,
        ctx,
        "spark.range(4).createOrReplaceTempView('local_v')\n"
        "spark.range(6).createOrReplaceGlobalTempView('shared_v')",
    )
    assert sql(w, cid, ctx, "SELECT count(*) FROM local_v") == [[4]]
    other = _context(w, cid, Language.SQL)
    assert sql(w, cid, other, "SELECT count(*) FROM global_temp.shared_v") == [[6]]
    assert "TABLE_OR_VIEW_NOT_FOUND" in error(w, cid, other, "SELECT * FROM local_v", Language.SQL)
    # A temporary view over a catalog table, and one named like a table, which it shadows.
    sql(
        w,
        cid,
        ctx,
        "CREATE TEMP VIEW small_people AS SELECT * FROM main.default.people WHERE id < 2",
    )
    assert sql(w, cid, ctx, "SELECT count(*) FROM small_people") == [[2]]
    w.command_execution.destroy(cluster_id=cid, context_id=other)


# --- Spark's Parquet reader: column pruning; a real conflict in a context -------------------

# Bytes read by the Spark jobs of an action (a classic context).
INPUT_BYTES = (
    "from kiln.driver.delta.metrics import input_bytes as _ib\n"
    "def _input_bytes(action):\n"
    "    return _ib(spark, action)\n"
)


def test_column_pruning_and_a_conflicting_writer(w: WorkspaceClient, cid: str, ctx: str) -> None:
    ok(
        w,
        cid,
        ctx,
        "spark.range(20000).selectExpr('id', 'sha2(cast(id AS string), 512) AS pad')"
        f".write.saveAsTable('main.default.wide')\n{INPUT_BYTES}",
    )
    full = value(w, cid, ctx, "_input_bytes(lambda: spark.table('wide').collect())")
    # A DELETE reads and rewrites the table's files in Spark tasks (their input metrics).
    deleting = value(
        w, cid, ctx, "_input_bytes(lambda: spark.sql('DELETE FROM wide WHERE id = 7').collect())"
    )
    assert deleting > 0 and value(w, cid, ctx, "spark.table('wide').count()") == 19999
    # So does a MERGE: its source is joined on the executors, never collected.
    merging = value(
        w,
        cid,
        ctx,
        "_input_bytes(lambda: DeltaTable.forName(spark, 'wide').alias('t')"
        ".merge(spark.range(3).alias('s'), 't.id = s.id').whenMatchedDelete().execute())",
    )
    assert merging > 0 and value(w, cid, ctx, "spark.table('wide').count()") == 19996
    narrow = value(w, cid, ctx, "_input_bytes(lambda: spark.table('wide').select('id').collect())")
    by_sql = value(w, cid, ctx, "_input_bytes(lambda: spark.sql('SELECT id FROM wide').collect())")
    # Only column id's bytes are read (and Hadoop's read buffers): pad is ~16 times larger.
    assert 0 < narrow * 4 < full and 0 < by_sql * 4 < full, (narrow, by_sql, full)
    plan = value(w, cid, ctx, "spark.table('wide').select('id')._jdf.queryExecution().toString()")
    assert "FileScan parquet" in plan and "ReadSchema: struct<id:bigint>" in plan
    # A DELETE whose rows another writer updates before it commits: it fails with
    # Databricks' wording, the other writer's commit stays, nothing is lost.
    ok(
        w,
        cid,
        ctx,
        "from delta.tables import DeltaTable\n"
        "from deltalake import DeltaTable as _Rs\n"
        "spark.range(5).write.saveAsTable('main.default.clash')\n"
        "_dt = DeltaTable.forName(spark, 'clash')\n"
        "_read = _dt._rs\n"
        "def _raced():\n"
        "    snapshot = _read()\n"
        "    _Rs(_dt._url).update(updates={'id': 'id + 10'}, predicate='id = 2')\n"
        "    return snapshot\n"
        "_dt._rs = _raced",
    )
    failed = error(w, cid, ctx, "_dt.delete('id = 2')")
    assert "[DELTA_CONCURRENT_" in failed and "try the operation again" in failed, failed
    assert value(w, cid, ctx, "sorted(r.id for r in spark.table('clash').collect())") == [
        0,
        1,
        3,
        4,
        12,
    ]
    ok(w, cid, ctx, "from delta.exceptions import ConcurrentAppendException")
    assert value(w, cid, ctx, "ConcurrentAppendException.condition") == "DELTA_CONCURRENT_APPEND"
