"""Execution contexts and commands (API 1.2) on a real cluster, with databricks-sdk.

One server and one single-node cluster (no isolation: contexts attach to the driver JVM through
py4j) serve the whole module; one test starts a standard-access cluster (Spark Connect
contexts) of its own. The last test kills the server with SIGKILL and starts it again on the
same data dir and port: the cluster and its contexts must have survived.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from compute_support import (
    RUNTIME,
    SINGLE_NODE_CONF,
    SINGLE_NODE_TAGS,
    SMALL,
    WAIT,
    cluster_home,
    compute_env,
    make_user,
    running_compute_server,
    single_node_cluster,
    tagged,
    unique,
    wait_for,
    wait_state,
)
from databricks.sdk import WorkspaceClient
from databricks.sdk.service.compute import (
    ClusterDetails,
    CommandStatus,
    CommandStatusResponse,
    ContextStatus,
    DataSecurityMode,
    Language,
    ResultType,
    State,
)

from support import Server, assert_error, start_server

CMD_WAIT = timedelta(minutes=3)


@pytest.fixture(scope="module")
def compute_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The module's server; its clean stop at the end must leave no cluster process behind."""
    data = tmp_path_factory.mktemp("execution") / "data"
    with running_compute_server(data, compute_env()) as srv:
        yield srv


@pytest.fixture(scope="module")
def cluster(w: WorkspaceClient) -> ClusterDetails:
    """A single-node cluster without data_security_mode: no-isolation shared (classic API)."""
    return single_node_cluster(w, "exec")


@pytest.fixture(scope="module")
def cid(cluster: ClusterDetails) -> str:
    assert cluster.cluster_id is not None
    return cluster.cluster_id


@pytest.fixture(scope="module")
def ctx(w: WorkspaceClient, cid: str) -> str:
    """The module's Python context."""
    created = w.command_execution.create_and_wait(
        cluster_id=cid, language=Language.PYTHON, timeout=CMD_WAIT
    )
    assert created.status == ContextStatus.RUNNING and created.id
    return created.id


def run(
    w: WorkspaceClient, cid: str, ctx: str, command: str, language: Language = Language.PYTHON
) -> CommandStatusResponse:
    return w.command_execution.execute_and_wait(
        cluster_id=cid, context_id=ctx, command=command, language=language, timeout=CMD_WAIT
    )


def text(response: CommandStatusResponse) -> str:
    assert response.status == CommandStatus.FINISHED, response
    assert response.results is not None
    assert response.results.result_type == ResultType.TEXT, response.results
    return str(response.results.data)


# --- commands -------------------------------------------------------------------------------


def test_python_commands_run_on_the_cluster(w: WorkspaceClient, cid: str, ctx: str) -> None:
    assert text(run(w, cid, ctx, "1 + 1")) == "2"
    total = run(w, cid, ctx, 'spark.range(10**6).selectExpr("sum(id)").collect()')
    assert text(total) == "[Row(sum(id)=499999500000)]"
    # print output and the last expression's value, in order; state stays between commands.
    assert text(run(w, cid, ctx, "x = 21\nprint('half', x)\nx * 2")) == "half 21\n42"
    assert text(run(w, cid, ctx, "sc.parallelize(range(10), 2).map(lambda v: v * x).sum()"))
    assert text(run(w, cid, ctx, "x")) == "21"
    # Indented code (databricks-sdk's remote dbutils sends it so) runs dedented.
    assert text(run(w, cid, ctx, "\n        y = 3\n        y + x\n        ")) == "24"
    # A statement alone shows nothing.
    assert text(run(w, cid, ctx, "z = 1")) == ""


def test_sql_returns_a_table(w: WorkspaceClient, cid: str, ctx: str) -> None:
    response = run(w, cid, ctx, "SELECT id, id * 2 AS twice, 'k' AS s FROM range(3)", Language.SQL)
    assert response.status == CommandStatus.FINISHED
    results = response.results
    assert results is not None and results.result_type == ResultType.TABLE
    assert results.data == [[0, 0, "k"], [1, 2, "k"], [2, 4, "k"]]
    assert results.schema is not None
    assert [(f["name"], json.loads(f["type"])) for f in results.schema] == [
        ("id", "long"),
        ("twice", "long"),
        ("s", "string"),
    ]
    assert results.is_json_schema is True and results.truncated is False
    # Several statements: the last one's result; the context's temp views are its own.
    response = run(
        w,
        cid,
        ctx,
        "CREATE OR REPLACE TEMP VIEW t AS SELECT 7 AS n; -- a comment; with a semicolon\n"
        "SELECT n FROM t",
        Language.SQL,
    )
    assert response.results is not None and response.results.data == [[7]]
    # The Python side sees the last SQL result as _sqldf.
    assert text(run(w, cid, ctx, "_sqldf.first().n")) == "7"


def test_an_exception_arrives_with_its_traceback(w: WorkspaceClient, cid: str, ctx: str) -> None:
    response = run(w, cid, ctx, "def explode():\n    raise ValueError('boom')\n\nexplode()")
    # A Python error is a finished command with an error result, as on Databricks.
    assert response.status == CommandStatus.FINISHED
    results = response.results
    assert results is not None and results.result_type == ResultType.ERROR
    assert results.summary == "ValueError: boom"
    assert results.cause is not None
    assert "Traceback (most recent call last)" in results.cause
    assert "in explode" in results.cause and "raise ValueError('boom')" in results.cause
    assert "kiln/driver" not in results.cause
    bad = run(w, cid, ctx, "def broken(:\n    pass")
    assert bad.results is not None and bad.results.result_type == ResultType.ERROR
    assert (bad.results.summary or "").startswith("SyntaxError")
    # A Spark error too; the context goes on.
    failed = run(w, cid, ctx, "spark.sql('SELECT * FROM no_such_table').collect()")
    assert failed.results is not None and failed.results.result_type == ResultType.ERROR
    assert "TABLE_OR_VIEW_NOT_FOUND" in (failed.results.summary or "")
    assert text(run(w, cid, ctx, "'still here'")) == "'still here'"


def test_cancel_interrupts_a_sleeping_command(w: WorkspaceClient, cid: str, ctx: str) -> None:
    started = w.command_execution.execute(
        cluster_id=cid, context_id=ctx, command="import time\ntime.sleep(600)"
    )
    command_id = started.response.id
    assert command_id
    wait_for(
        lambda: (
            w.command_execution.command_status(cid, ctx, command_id).status == CommandStatus.RUNNING
        ),
        "the command to run",
        timeout=60,
    )
    # Cancelled within 5 s: the wait's deadline, not a measurement.
    cancelled = w.command_execution.cancel_and_wait(
        cluster_id=cid, context_id=ctx, command_id=command_id, timeout=timedelta(seconds=5)
    )
    assert cancelled.status == CommandStatus.CANCELLED
    assert text(run(w, cid, ctx, "'usable'")) == "'usable'"
    # A cancelled Spark job frees the cluster: the next job runs at once.
    slow = w.command_execution.execute(
        cluster_id=cid,
        context_id=ctx,
        command="spark.range(1).selectExpr(\"reflect('java.lang.Thread', 'sleep', "
        'bigint(600000))").collect()',
    )
    slow_id = slow.response.id
    assert slow_id
    wait_for(
        lambda: (
            w.command_execution.command_status(cid, ctx, slow_id).status == CommandStatus.RUNNING
        ),
        "the Spark job to run",
        timeout=60,
    )
    w.command_execution.cancel_and_wait(
        cluster_id=cid, context_id=ctx, command_id=slow_id, timeout=timedelta(seconds=30)
    )
    assert text(run(w, cid, ctx, "spark.range(5).count()")) == "5"


def test_contexts_are_isolated_and_survive_each_other(
    w: WorkspaceClient, http: httpx.Client, cid: str, ctx: str
) -> None:
    run(w, cid, ctx, "mine = 'first'")
    other = w.command_execution.create_and_wait(cluster_id=cid, language=Language.PYTHON).id
    assert other and other != ctx
    missing = run(w, cid, other, "mine")
    assert missing.results is not None and missing.results.summary is not None
    assert missing.results.summary.startswith("NameError")
    # Each context has its own working directory and Spark session.
    assert text(run(w, cid, ctx, "import os; os.getcwd()")) != text(
        run(w, cid, other, "import os; os.getcwd()")
    )
    run(w, cid, ctx, "spark.range(1).createOrReplaceTempView('only_mine')")
    hidden = run(w, cid, other, "spark.table('only_mine').count()")
    assert hidden.results is not None and hidden.results.result_type == ResultType.ERROR
    # Restarting a context's Python (dbutils.library.restartPython, %pip) keeps the context.
    run(w, cid, other, "kept = 1")
    run(w, cid, other, "dbutils.library.restartPython()")
    assert text(run(w, cid, other, "'kept' in globals(), spark.range(3).count()")) == "(False, 3)"
    # One context's Python dies; it says so, and the other keeps answering.
    crash = run(w, cid, other, "import os\nos._exit(3)")
    assert crash.status == CommandStatus.ERROR and crash.results is not None
    assert "exit code 3" in (crash.results.summary or "")
    died = w.command_execution.context_status(cid, other)
    assert died.status == ContextStatus.ERROR
    r = http.post(
        "/api/1.2/commands/execute",
        json={"clusterId": cid, "contextId": other, "command": "1"},
    )
    body = assert_error(r, 400, "INVALID_STATE")
    assert "exited unexpectedly" in body["message"] and "exit code 3" in body["message"]
    assert text(run(w, cid, ctx, "mine")) == "'first'"
    w.command_execution.destroy(cid, other)


def test_display_of_frames_and_figures(w: WorkspaceClient, cid: str, ctx: str) -> None:
    table = run(w, cid, ctx, "display(spark.range(1500).selectExpr('id', 'id % 3 AS m'))")
    results = table.results
    assert results is not None and results.result_type == ResultType.TABLE
    assert isinstance(results.data, list) and len(results.data) == 1000
    assert results.data[:2] == [[0, 0], [1, 1]] and results.truncated is True
    pandas = run(
        w, cid, ctx, "import pandas as pd\ndisplay(pd.DataFrame({'a': [1, 2], 'b': ['x', 'y']}))"
    )
    assert pandas.results is not None and pandas.results.data == [[1, "x"], [2, "y"]]
    assert pandas.results.schema is not None
    assert [json.loads(f["type"]) for f in pandas.results.schema] == ["long", "string"]
    figure = run(
        w,
        cid,
        ctx,
        "import matplotlib.pyplot as plt\nfig, ax = plt.subplots()\nax.plot([1, 3, 2])\n"
        "display(fig)",
    )
    assert figure.results is not None and figure.results.result_type == ResultType.IMAGE
    assert (figure.results.file_name or "").startswith("data:image/png;base64,iVBOR")
    # plt.show() shows the open figures too, as a notebook's inline backend does.
    shown = run(w, cid, ctx, "plt.figure(); plt.plot([1, 2]); plt.show()")
    assert shown.results is not None and shown.results.result_type == ResultType.IMAGE
    html = run(w, cid, ctx, "displayHTML('<b>bold</b>')")
    assert text(html) == "<b>bold</b>"


def test_output_is_truncated_at_databricks_limit(w: WorkspaceClient, cid: str, ctx: str) -> None:
    response = run(w, cid, ctx, "for i in range(2000):\n    print('x' * 1000)")
    assert response.results is not None
    assert response.results.truncated is True
    data = str(response.results.data)
    assert data.startswith("x" * 1000)
    assert data.endswith("*** WARNING: max output size exceeded, skipping output. ***")
    assert len(data) < 50_000 + 100
    assert text(run(w, cid, ctx, "len('after')")) == "5"


def test_the_context_token_acts_as_its_user(
    compute_server: Server, w: WorkspaceClient, http: httpx.Client, cid: str
) -> None:
    created = w.command_execution.create_and_wait(cluster_id=cid, language=Language.PYTHON)
    assert created.id
    code = (
        "import json, os, urllib.request\n"
        "req = urllib.request.Request(os.environ['DATABRICKS_HOST'] + "
        "'/api/2.0/preview/scim/v2/Me', headers={'Authorization': "
        "'Bearer ' + os.environ['DATABRICKS_TOKEN']})\n"
        "json.load(urllib.request.urlopen(req))['userName']"
    )
    assert text(run(w, cid, created.id, code)) == "'admin@kiln.local'"
    token = text(run(w, cid, created.id, "os.environ['DATABRICKS_TOKEN']"))
    tokens = http.get("/api/2.0/token/list").json()["token_infos"]
    assert any(created.id in (t.get("comment") or "") for t in tokens)
    w.command_execution.destroy(cid, created.id)
    # Destroyed: its token is revoked, and the context is gone.
    gone = httpx.get(
        f"{compute_server.url}/api/2.0/preview/scim/v2/Me",
        headers={"Authorization": f"Bearer {token.strip(chr(39))}"},
    )
    assert gone.status_code == 401
    r = http.get("/api/1.2/contexts/status", params={"clusterId": cid, "contextId": created.id})
    assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST")


# --- bad input ------------------------------------------------------------------------------


def test_bad_input_is_refused(
    compute_server: Server, http: httpx.Client, cid: str, ctx: str
) -> None:
    nowhere = "0101-000000-nothere0"
    for path, body in (
        ("/api/1.2/contexts/create", {"clusterId": nowhere, "language": "python"}),
        ("/api/1.2/commands/execute", {"clusterId": nowhere, "contextId": ctx, "command": "1"}),
    ):
        assert_error(http.post(path, json=body), 400, "INVALID_PARAMETER_VALUE")
    assert_error(http.post("/api/1.2/contexts/create", json={}), 400, "INVALID_PARAMETER_VALUE")
    for language in ("scala", "r"):
        r = http.post("/api/1.2/contexts/create", json={"clusterId": cid, "language": language})
        assert "not supported" in assert_error(r, 400, "INVALID_PARAMETER_VALUE")["message"]
        r = http.post(
            "/api/1.2/commands/execute",
            json={"clusterId": cid, "contextId": ctx, "command": "1", "language": language},
        )
        assert_error(r, 400, "INVALID_PARAMETER_VALUE")
    r = http.post("/api/1.2/contexts/create", json={"clusterId": cid, "language": "cobol"})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")
    # Unknown context and command ids.
    r = http.get("/api/1.2/contexts/status", params={"clusterId": cid, "contextId": "123"})
    assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST")
    r = http.post("/api/1.2/commands/execute", json={"clusterId": cid, "contextId": "123"})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")  # no command
    r = http.post(
        "/api/1.2/commands/execute", json={"clusterId": cid, "contextId": "123", "command": "1"}
    )
    assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST")
    status = {"clusterId": cid, "contextId": ctx, "commandId": "feedface"}
    assert_error(
        http.get("/api/1.2/commands/status", params=status), 404, "RESOURCE_DOES_NOT_EXIST"
    )
    assert_error(http.post("/api/1.2/commands/cancel", json=status), 404, "RESOURCE_DOES_NOT_EXIST")
    r = http.get("/api/1.2/commands/status", params={"clusterId": cid, "contextId": ctx})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")
    r = http.post("/api/1.2/contexts/destroy", json={"clusterId": cid, "contextId": "123"})
    assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST")
    # A command over Databricks' 6 MB input limit.
    huge = "#" * (6 * 1024 * 1024 + 1)
    r = http.post(
        "/api/1.2/commands/execute", json={"clusterId": cid, "contextId": ctx, "command": huge}
    )
    assert_error(r, 413, "MAX_REQUEST_SIZE_EXCEEDED")
    # A user without permission to attach, and another admin reaching for this context.
    _, token = make_user(compute_server, http)
    with compute_server.client(token) as stranger:
        r = stranger.post("/api/1.2/contexts/create", json={"clusterId": cid})
        assert_error(r, 403, "PERMISSION_DENIED")
    name, token = make_user(compute_server, http, "admin2")
    admins = http.get(
        "/api/2.0/preview/scim/v2/Groups", params={"filter": 'displayName eq "admins"'}
    ).json()["Resources"][0]
    user_id = http.get(
        "/api/2.0/preview/scim/v2/Users", params={"filter": f'userName eq "{name}"'}
    ).json()["Resources"][0]["id"]
    r = http.patch(
        f"/api/2.0/preview/scim/v2/Groups/{admins['id']}",
        json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "add", "path": "members", "value": [{"value": user_id}]}],
        },
    )
    assert r.status_code in (200, 204), r.text
    with compute_server.client(token) as other_admin:
        r = other_admin.post(
            "/api/1.2/commands/execute", json={"clusterId": cid, "contextId": ctx, "command": "1"}
        )
        assert_error(r, 403, "PERMISSION_DENIED")


# --- standard access: Spark Connect contexts -------------------------------------------------


def test_standard_cluster_contexts_use_spark_connect(
    w: WorkspaceClient, http: httpx.Client
) -> None:
    created = w.clusters.create(
        cluster_name=unique("standard"),
        spark_version=RUNTIME,
        node_type_id=SMALL,
        num_workers=0,
        spark_conf=SINGLE_NODE_CONF,
        custom_tags=SINGLE_NODE_TAGS,
        data_security_mode=DataSecurityMode.USER_ISOLATION,
    )
    sid = created.cluster_id
    assert sid
    try:
        # Still starting: Databricks' transient error, which databricks-sdk retries.
        r = http.post("/api/1.2/contexts/create", json={"clusterId": sid})
        if w.clusters.get(sid).state == State.PENDING:
            body = assert_error(r, 400, "INVALID_STATE")
            assert "ClusterNotReadyException" in body["message"]
        wait_state(w, sid, State.RUNNING)
        first = w.command_execution.create_and_wait(cluster_id=sid, language=Language.PYTHON).id
        second = w.command_execution.create_and_wait(cluster_id=sid, language=Language.SQL).id
        assert first and second
        assert text(run(w, sid, first, "spark.range(100).selectExpr('sum(id)').first()[0]")) == (
            "4950"
        )
        no_sc = run(w, sid, first, "sc.parallelize([1])")
        assert no_sc.results is not None and no_sc.results.result_type == ResultType.ERROR
        assert "JVM_ATTRIBUTE_NOT_SUPPORTED" in (no_sc.results.summary or "")
        # Sessions are isolated: temp views and SQL conf are each context's own.
        run(w, sid, first, "spark.range(2).createOrReplaceTempView('v')")
        response = run(w, sid, second, "SELECT count(*) AS n FROM v", Language.SQL)
        assert response.results is not None and response.results.result_type == ResultType.ERROR
        response = run(w, sid, second, "SELECT 1 AS one", Language.SQL)
        assert response.results is not None and response.results.data == [[1]]
        w.clusters.delete_and_wait(sid, timeout=WAIT)
        # Terminated: commands are refused with the cluster's state.
        r = http.post("/api/1.2/contexts/create", json={"clusterId": sid})
        assert "TERMINATED" in assert_error(r, 400, "INVALID_STATE")["message"]
        r = http.post(
            "/api/1.2/commands/execute", json={"clusterId": sid, "contextId": first, "command": "1"}
        )
        assert_error(r, 400, "INVALID_STATE")
    finally:
        w.clusters.permanent_delete(sid)


# --- the control plane crashes ----------------------------------------------------------------


def test_contexts_survive_a_kill_9_of_the_server(
    compute_server: Server, w: WorkspaceClient, cid: str, ctx: str
) -> None:
    run(w, cid, ctx, "survivor = 'still here'")
    processes = {p.pid for p in tagged(cluster_home(compute_server, cid))}
    os.kill(compute_server.process.pid, signal.SIGKILL)
    compute_server.process.wait(timeout=30)
    assert processes <= {p.pid for p in tagged(cluster_home(compute_server, cid))}
    port = int(compute_server.url.rsplit(":", 1)[1])
    # The module's fixtures now talk to the new server, and its teardown stops it cleanly
    # (which must stop the cluster and every context).
    compute_server.process = start_server(
        compute_server.data_dir, port=port, env=compute_env()
    ).process
    assert w.clusters.get(cid).state == State.RUNNING
    assert text(run(w, cid, ctx, "survivor")) == "'still here'"
    assert w.command_execution.context_status(cid, ctx).status == ContextStatus.RUNNING
