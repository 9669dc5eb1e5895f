"""The legacy databricks-cli 0.18 running a notebook repository's deployment steps.

The CLI drops the port from its host, so this module runs its own server on port 80 of
127.0.0.2 (a loopback address; nothing listens beyond loopback).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from legacy_cli import CLI, HOST, PORT, bind_problem, cli_runner
from support import Server, start_server, stop_server_process

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cli_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    reason = bind_problem()
    if reason:
        pytest.skip(reason)
    srv = start_server(tmp_path_factory.mktemp("legacy") / "data", host=HOST, port=PORT)
    try:
        yield srv
    finally:
        stop_server_process(srv.process)


@pytest.fixture(scope="module")
def cli(cli_server: Server, tmp_path_factory: pytest.TempPathFactory) -> Callable[..., str]:
    return cli_runner(tmp_path_factory.mktemp("cli-home"), cli_server.token)


def _make_repo(root: Path) -> None:
    (root / "etl").mkdir(parents=True)
    (root / "etl" / "ingest.py").write_text(
        "# Databricks notebook source\nprint('ingest')\n\n# COMMAND ----------\n\n"
        "# MAGIC %md\n# MAGIC # Ingest\n"
    )
    (root / "etl" / "report.sql").write_text(
        "-- Databricks notebook source\nSELECT 1\n\n-- COMMAND ----------\n\nSELECT 2\n"
    )
    (root / "ml").mkdir()
    (root / "ml" / "train.py").write_text("# Databricks notebook source\nimport os\n")
    (root / "ml" / "Explore.scala").write_text("// Databricks notebook source\nval x = 1\n")


def test_workspace_deployment(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    repo = tmp_path / "repo"
    _make_repo(repo)
    target = "/Shared/deploy"
    cli("workspace", "import_dir", str(repo), target)
    listing = cli("workspace", "ls", "--absolute", "-l", target)
    assert f"{target}/etl" in listing and f"{target}/ml" in listing
    etl = cli("workspace", "ls", f"{target}/etl")
    assert set(etl.split()) >= {"ingest", "report"}
    ml = cli("workspace", "ls", "-l", f"{target}/ml")
    assert "SCALA" in ml and "PYTHON" in ml
    # Re-deploy over the top needs --overwrite, as on Databricks.
    cli("workspace", "import_dir", "--overwrite", str(repo), target)
    out = tmp_path / "exported"
    cli("workspace", "export_dir", target, str(out))
    assert "print('ingest')" in (out / "etl" / "ingest.py").read_text()
    assert "SELECT 2" in (out / "etl" / "report.sql").read_text()
    cli("workspace", "delete", "--recursive", target)
    assert "deploy" not in cli("workspace", "ls", "/Shared")


def test_fs_cp_both_ways(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    src = tmp_path / "data.bin"
    payload = os.urandom(3 * 1024 * 1024 + 17)
    src.write_bytes(payload)
    cli("fs", "mkdirs", "dbfs:/deploy/libs")
    cli("fs", "cp", str(src), "dbfs:/deploy/libs/data.bin")
    cli("fs", "cp", "--overwrite", str(src), "dbfs:/deploy/libs/data.bin")
    assert "data.bin" in cli("fs", "ls", "dbfs:/deploy/libs")
    back = tmp_path / "back.bin"
    cli("fs", "cp", "dbfs:/deploy/libs/data.bin", str(back))
    assert back.read_bytes() == payload
    small = tmp_path / "conf.json"
    small.write_text(json.dumps({"env": "prod"}))
    cli("fs", "cp", str(small), "dbfs:/deploy/conf.json")
    cli("fs", "cp", "dbfs:/deploy/conf.json", str(tmp_path / "conf-back.json"))
    assert json.loads((tmp_path / "conf-back.json").read_text()) == {"env": "prod"}
    cli("fs", "rm", "-r", "dbfs:/deploy")
    assert "deploy" not in cli("fs", "ls", "dbfs:/")


def test_secrets(cli) -> None:  # type: ignore[no-untyped-def]
    cli("secrets", "create-scope", "--scope", "deploy", "--initial-manage-principal", "users")
    cli("secrets", "put", "--scope", "deploy", "--key", "db-password", "--string-value", "hunter2")
    listed = cli("secrets", "list", "--scope", "deploy")
    assert "db-password" in listed and "hunter2" not in listed
    assert "deploy" in cli("secrets", "list-scopes")
    cli("secrets", "put-acl", "--scope", "deploy", "--principal", "users", "--permission", "READ")
    assert "READ" in cli("secrets", "list-acls", "--scope", "deploy")
    cli("secrets", "delete", "--scope", "deploy", "--key", "db-password")
    cli("secrets", "delete-scope", "--scope", "deploy")


def test_cli_is_installed() -> None:
    assert shutil.which(CLI) or Path(CLI).exists()


def test_cluster_pipeline(cli, cli_server: Server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A deployment script's cluster steps: create from JSON, find by name with jq, install a
    library, permanently delete; no Spark process is left behind."""
    import psutil

    jq = shutil.which("jq")
    if jq is None:
        pytest.skip("jq is not installed (.ci/run installs it from Debian's packages)")
    spec = {
        "cluster_name": "deploy-etl",
        "spark_version": "16.4.x-scala2.13",
        "node_type_id": _smallest_node_type(cli),
        "num_workers": 1,
        "autotermination_minutes": 30,
        "spark_conf": {"spark.executor.memory": "512m", "spark.driver.memory": "512m"},
        "spark_env_vars": {"PIPELINE": "etl"},
        "custom_tags": {"team": "data"},
        "cluster_log_conf": {"dbfs": {"destination": "dbfs:/cluster-logs"}},
    }
    spec_file = tmp_path / "cluster.json"
    spec_file.write_text(json.dumps(spec))
    created = json.loads(cli("clusters", "create", "--json-file", str(spec_file)))
    listed = cli("clusters", "list", "--output", "json")
    found = subprocess.run(
        [jq, "-r", '.clusters[] | select(.cluster_name == "deploy-etl") | .cluster_id'],
        input=listed,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert found == [created["cluster_id"]]
    cluster_id = found[0]
    cli("libraries", "install", "--cluster-id", cluster_id, "--pypi-package", "six")
    statuses = json.loads(cli("libraries", "cluster-status", "--cluster-id", cluster_id))
    assert [s["library"] for s in statuses["library_statuses"]] == [{"pypi": {"package": "six"}}]
    got = json.loads(cli("clusters", "get", "--cluster-id", cluster_id))
    assert got["spark_env_vars"] == {"PIPELINE": "etl"}
    assert got["custom_tags"]["team"] == "data"
    cli("clusters", "permanent-delete", "--cluster-id", cluster_id)
    assert "deploy-etl" not in cli("clusters", "list", "--output", "json")
    leftovers = [
        p.pid
        for p in psutil.process_iter(["cmdline"])
        if cluster_id in " ".join(p.info["cmdline"] or [])
    ]
    assert leftovers == []


def _smallest_node_type(cli) -> str:  # type: ignore[no-untyped-def]
    types = json.loads(cli("clusters", "list-node-types"))["node_types"]
    return str(min(types, key=lambda t: (t["memory_mb"], t["num_cores"]))["node_type_id"])
