"""The legacy databricks-cli 0.18 with Jobs API 2.0 (its default): `jobs create --json-file`
with a 2.0 single-task job, `jobs run-now`, `runs get`, `runs get-output`, `jobs list/get`,
`runs list`, `jobs delete`, against a notebook job on a real single-node cluster.

The CLI drops the port from its host, so the server of this module listens on port 80 of
127.0.0.2 (a loopback address; nothing listens beyond loopback).
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from compute_support import (
    RUNTIME,
    SINGLE_NODE_CONF,
    SINGLE_NODE_TAGS,
    SMALL,
    clusters_dir,
    compute_env,
    kill_tagged,
    tagged,
    unique,
)
from databricks.sdk import WorkspaceClient
from databricks.sdk.service.workspace import ImportFormat, Language

from legacy_cli import HOST, PORT, bind_problem, cli_runner
from support import Server, start_server, stop_server_process

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cli_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    reason = bind_problem()
    if reason:
        pytest.skip(reason)
    srv = start_server(
        tmp_path_factory.mktemp("legacy-jobs") / "data", host=HOST, port=PORT, env=compute_env()
    )
    homes = clusters_dir(srv)
    try:
        yield srv
    finally:
        code = stop_server_process(srv.process)
        leftovers = [p.pid for p in tagged(homes)]
        kill_tagged(homes)
    assert code == 0
    assert leftovers == [], "a clean stop of the server left Spark processes running"


@pytest.fixture(scope="module")
def cli(
    cli_server: Server, tmp_path_factory: pytest.TempPathFactory
) -> Callable[..., dict[str, Any]]:
    run_cli = cli_runner(tmp_path_factory.mktemp("cli-home"), cli_server.token)

    def run(*args: str) -> dict[str, Any]:
        stdout = run_cli(*args)
        out: dict[str, Any] = json.loads(stdout) if stdout.strip() else {}
        return out

    return run


@pytest.fixture(scope="module")
def w(cli_server: Server) -> WorkspaceClient:
    return WorkspaceClient(host=cli_server.url, token=cli_server.token, auth_type="pat")


def test_notebook_job_through_the_legacy_cli(
    cli: Callable[..., dict[str, Any]], w: WorkspaceClient, tmp_path: Path
) -> None:
    cluster = w.clusters.create_and_wait(
        cluster_name=unique("legacy-jobs"),
        spark_version=RUNTIME,
        node_type_id=SMALL,
        num_workers=0,
        spark_conf=SINGLE_NODE_CONF,
        custom_tags=SINGLE_NODE_TAGS,
        timeout=timedelta(minutes=10),
    )
    notebook = f"/Shared/{unique('legacy')}/greet"
    w.workspace.mkdirs(notebook.rsplit("/", 1)[0])
    source = (
        "# Databricks notebook source\n"
        'dbutils.widgets.text("who", "nobody")\n\n'
        "# COMMAND ----------\n\n"
        'dbutils.notebook.exit("hello " + dbutils.widgets.get("who"))\n'
    )
    w.workspace.import_(
        notebook,
        content=base64.b64encode(source.encode()).decode(),
        format=ImportFormat.SOURCE,
        language=Language.PYTHON,
        overwrite=True,
    )
    # A Jobs API 2.0 job: one task, its fields at the top of the settings.
    spec = tmp_path / "job.json"
    spec.write_text(
        json.dumps(
            {
                "name": "legacy notebook job",
                "existing_cluster_id": cluster.cluster_id,
                "notebook_task": {"notebook_path": notebook, "base_parameters": {"who": "json"}},
                "max_retries": 0,
                "timeout_seconds": 900,
            }
        )
    )
    job_id = cli("jobs", "create", "--json-file", str(spec))["job_id"]
    job = cli("jobs", "get", "--job-id", str(job_id))
    assert job["settings"]["notebook_task"]["notebook_path"] == notebook
    assert job["settings"]["existing_cluster_id"] == cluster.cluster_id
    assert job["settings"]["format"] == "SINGLE_TASK"
    assert job_id in [j["job_id"] for j in cli("jobs", "list", "--output", "JSON")["jobs"]]
    started = cli("jobs", "run-now", "--job-id", str(job_id), "--notebook-params", '{"who": "cli"}')
    run_id = started["run_id"]
    assert started["number_in_job"] == run_id
    deadline = time.monotonic() + 600
    while True:
        run = cli("runs", "get", "--run-id", str(run_id))
        if run["state"]["life_cycle_state"] in ("TERMINATED", "SKIPPED", "INTERNAL_ERROR"):
            break
        assert time.monotonic() < deadline, f"run {run_id} did not end: {run['state']}"
        time.sleep(1)
    assert run["state"]["result_state"] == "SUCCESS", run["state"]
    assert run["job_id"] == job_id
    assert run["task"]["notebook_task"]["notebook_path"] == notebook
    assert run["cluster_instance"]["cluster_id"] == cluster.cluster_id
    assert run["overriding_parameters"] == {"notebook_params": {"who": "cli"}}
    output = cli("runs", "get-output", "--run-id", str(run_id))
    assert output["notebook_output"]["result"] == "hello cli"
    assert output["metadata"]["state"]["result_state"] == "SUCCESS"
    runs = cli("runs", "list", "--job-id", str(job_id), "--output", "JSON")["runs"]
    assert [r["run_id"] for r in runs] == [run_id]
    cli("jobs", "delete", "--job-id", str(job_id))
    assert job_id not in [j["job_id"] for j in cli("jobs", "list", "--output", "JSON")["jobs"]]
