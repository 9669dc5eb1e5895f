"""Acceptance of the tables issue: a managed table on a 2-worker cluster (created, appended,
MERGEd, time-travelled, its history read) seen at once from a second cluster, listed by the
API and read from outside with deltalake at the same versions; then 16 concurrent appends, 8
from each cluster: 16 commits and the exact row count. The second cluster is a standard
(shared) one, whose contexts are Spark Connect clients: tables work there too."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import deltalake
import pytest
from compute_support import (
    RUNTIME,
    SINGLE_NODE_CONF,
    SINGLE_NODE_TAGS,
    SMALL,
    WAIT,
    compute_env,
    running_compute_server,
    unique,
)
from databricks.sdk import WorkspaceClient
from databricks.sdk.service.compute import CommandStatus, DataSecurityMode, Language, ResultType

from support import Server

pytestmark = pytest.mark.slow
CMD_WAIT = timedelta(minutes=6)


@pytest.fixture(scope="module")
def compute_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("tables-acceptance") / "data"
    with running_compute_server(data, compute_env()) as srv:
        yield srv


@pytest.fixture(scope="module")
def clusters(w: WorkspaceClient) -> tuple[str, str]:
    """A 2-worker standalone cluster and a single-node standard (Spark Connect) one, started
    together."""
    multi = w.clusters.create(
        cluster_name=unique("acc-multi"),
        spark_version=RUNTIME,
        node_type_id=SMALL,
        num_workers=2,
        spark_conf={"spark.sql.shuffle.partitions": "4"},
    )
    single = w.clusters.create(
        cluster_name=unique("acc-single"),
        spark_version=RUNTIME,
        node_type_id=SMALL,
        num_workers=0,
        spark_conf={**SINGLE_NODE_CONF, "spark.sql.shuffle.partitions": "2"},
        custom_tags=SINGLE_NODE_TAGS,
        data_security_mode=DataSecurityMode.USER_ISOLATION,
    )
    first = multi.result(timeout=WAIT).cluster_id
    second = single.result(timeout=WAIT).cluster_id
    assert first and second
    return first, second


def _context(w: WorkspaceClient, cid: str) -> str:
    made = w.command_execution.create_and_wait(
        cluster_id=cid, language=Language.PYTHON, timeout=CMD_WAIT
    )
    assert made.id
    return made.id


def value(w: WorkspaceClient, cid: str, ctx: str, code: str) -> Any:
    """Run code whose last line is an expression; its JSON value."""
    *body, last = code.strip().splitlines()
    command = "\n".join([*body, "import json as _j", f"print(_j.dumps({last}, default=str))"])
    response = w.command_execution.execute_and_wait(
        cluster_id=cid,
        context_id=ctx,
        command=command,
        language=Language.PYTHON,
        timeout=CMD_WAIT,
    )
    assert response.status == CommandStatus.FINISHED, response
    assert response.results is not None
    assert response.results.result_type == ResultType.TEXT, response.results.cause
    return json.loads(str(response.results.data).strip().splitlines()[-1])


APPENDS = """
from concurrent.futures import ThreadPoolExecutor
def _append(i):
    spark.range({base} + i * 1000, {base} + i * 1000 + 1000).selectExpr('id', "'{tag}' AS src") \\
        .write.mode('append').saveAsTable('main.default.race')
with ThreadPoolExecutor(8) as pool:
    list(pool.map(_append, range(8)))
'done'
"""


def test_acceptance_on_two_clusters(w: WorkspaceClient, clusters: tuple[str, str]) -> None:
    multi, single = clusters
    a, b = _context(w, multi), _context(w, single)
    # Distributed: 4 partitions written by the workers' executors, one commit.
    assert (
        value(
            w,
            multi,
            a,
            (
                "spark.range(0, 1000, 1, 4).selectExpr('id', 'id % 10 AS k', 'id * 1.5 AS v')"
                ".write.format('delta').saveAsTable('main.default.orders')\n"
                "spark.table('main.default.orders').count()"
            ),
        )
        == 1000
    )
    assert (
        value(
            w,
            multi,
            a,
            (
                "spark.range(1000, 1500).selectExpr('id', 'id % 10 AS k', 'id * 1.5 AS v')"
                ".write.mode('append').saveAsTable('main.default.orders')\n"
                "spark.sql('SELECT count(*) AS n FROM main.default.orders').first().n"
            ),
        )
        == 1500
    )
    # SQL MERGE: 100 matched rows updated, 100 new rows inserted.
    assert value(
        w,
        multi,
        a,
        (
            "spark.sql('''MERGE INTO main.default.orders AS t USING "
            "(SELECT id, id % 10 AS k, -1.0 AS v FROM range(1400, 1600)) AS s ON t.id = s.id "
            "WHEN MATCHED THEN UPDATE SET v = s.v WHEN NOT MATCHED THEN INSERT *''')\n"
            "spark.sql('SELECT count(*) AS n, sum(CASE WHEN v < 0 THEN 1 ELSE 0 END) AS neg "
            "FROM main.default.orders').first().asDict()"
        ),
    ) == {"n": 1600, "neg": 200}
    history = value(
        w,
        multi,
        a,
        (
            "[(r.version, r.operation) for r in "
            "spark.sql('DESCRIBE HISTORY main.default.orders').collect()]"
        ),
    )
    assert [v for v, _ in history] == [2, 1, 0]
    assert [op for _, op in history][:2] == ["MERGE", "WRITE"]
    # Time travel from the other cluster, at once.
    counts = value(
        w,
        single,
        b,
        (
            "[spark.sql(f'SELECT count(*) AS n FROM main.default.orders VERSION AS OF {v}')"
            ".first().n for v in range(3)]"
        ),
    )
    assert counts == [1000, 1500, 1600]
    assert value(w, single, b, "spark.table('orders').filter('v < 0').count()") == 200
    # The API lists it; plain Python reads the same versions.
    listed = {t.name: t for t in w.tables.list(catalog_name="main", schema_name="default")}
    assert "orders" in listed and listed["orders"].data_source_format is not None
    loc = w.tables.get("main.default.orders").storage_location
    assert loc
    assert [len(deltalake.DeltaTable(loc, version=v).to_pandas()) for v in range(3)] == [
        1000,
        1500,
        1600,
    ]

    # 16 concurrent appends, 8 from each cluster, into a table created empty (version 0).
    value(
        w,
        single,
        b,
        "spark.sql('CREATE TABLE main.default.race (id BIGINT, src STRING) "
        "USING delta')\n'created'",
    )
    first = w.command_execution.execute(
        cluster_id=multi,
        context_id=a,
        language=Language.PYTHON,
        command=APPENDS.format(base=0, tag="multi"),
    )
    second = w.command_execution.execute(
        cluster_id=single,
        context_id=b,
        language=Language.PYTHON,
        command=APPENDS.format(base=10_000_000, tag="single"),
    )
    for waiter in (first, second):
        done = waiter.result(timeout=CMD_WAIT)
        assert done.results is not None
        assert done.results.result_type == ResultType.TEXT, done.results.cause
    race = w.tables.get("main.default.race").storage_location
    assert race
    table = deltalake.DeltaTable(race)
    assert table.version() == 16
    assert [h["operation"] for h in table.history()].count("WRITE") == 16
    frame = table.to_pandas()
    assert len(frame) == 16_000 and frame["id"].is_unique
    assert frame["src"].value_counts().to_dict() == {"multi": 8000, "single": 8000}
    assert value(w, multi, a, "spark.table('main.default.race').count()") == 16_000

    # A Spark Connect context: create, append, read, time travel, pruned reads.
    assert value(
        w,
        single,
        b,
        (
            "spark.range(3).selectExpr('id', 'id * 2 AS v').write.saveAsTable('connected')\n"
            "spark.range(3, 5).selectExpr('id', 'id * 2 AS v').write.mode('append')"
            ".saveAsTable('main.default.connected')\n"
            "[type(spark).__module__, spark.table('connected').count(), "
            "spark.read.option('versionAsOf', 0).table('connected').count(), "
            "spark.sql('SELECT sum(v) AS s FROM connected VERSION AS OF 1').first().s, "
            "sorted(spark.table('connected').select('id').columns)]"
        ),
    ) == ["pyspark.sql.connect.session", 5, 3, 20, ["id"]]
