"""A real `kiln up` on a real PostgreSQL: tokens, SCIM and secrets through databricks-sdk."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import PermissionDenied, ResourceDoesNotExist
from databricks.sdk.service import iam
from databricks.sdk.service.workspace import AclPermission

from store.postgres_cluster import PostgresCluster
from support import Server, start_server, stop_server_process

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def database_url(postgres_cluster: PostgresCluster) -> str:
    return postgres_cluster.create_database("kiln_server")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("kiln-pg") / "data"


@pytest.fixture(scope="module")
def pg_server(database_url: str, data_dir: Path) -> Iterator[Server]:
    """`kiln up` with its metadata store on PostgreSQL, stopped by PID afterwards."""
    server = start_server(data_dir, env={"KILN_DATABASE_URL": database_url})
    try:
        yield server
    finally:
        stop_server_process(server.process)


@pytest.fixture(scope="module")
def pg_sdk(pg_server: Server) -> WorkspaceClient:
    return WorkspaceClient(host=pg_server.url, token=pg_server.token, auth_type="pat")


def client_for(server: Server, token: str) -> WorkspaceClient:
    return WorkspaceClient(host=server.url, token=token, auth_type="pat")


def test_store_is_postgres_not_sqlite(pg_server: Server, database_url: str) -> None:
    import psycopg

    assert not (pg_server.data_dir / "kiln.db").exists()
    with psycopg.connect(database_url) as conn:
        version = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        admins = conn.execute("SELECT count(*) FROM users").fetchone()
    assert version is not None
    assert admins is not None
    assert admins[0] >= 1


def test_tokens(pg_server: Server, pg_sdk: WorkspaceClient) -> None:
    created = pg_sdk.tokens.create(comment="pg token", lifetime_seconds=3600)
    assert created.token_value and created.token_info and created.token_info.token_id
    me = client_for(pg_server, created.token_value).current_user.me()
    assert me.user_name == pg_sdk.current_user.me().user_name
    info = created.token_info
    assert info.expiry_time and info.creation_time and info.expiry_time > info.creation_time
    assert info.token_id in {t.token_id for t in pg_sdk.tokens.list()}
    assert info.token_id in {t.token_id for t in pg_sdk.token_management.list()}
    pg_sdk.tokens.delete(info.token_id)
    with pg_server.client(created.token_value) as http:
        assert http.get("/api/2.0/preview/scim/v2/Me").status_code == 401
    assert info.token_id not in {t.token_id for t in pg_sdk.tokens.list()}


def test_scim(pg_server: Server, pg_sdk: WorkspaceClient) -> None:
    user = pg_sdk.users.create(user_name="grace@example.com", display_name="Grace")
    assert user.id
    inner = pg_sdk.groups.create(display_name="pg-inner", members=[iam.ComplexValue(value=user.id)])
    outer = pg_sdk.groups.create(
        display_name="pg-outer", members=[iam.ComplexValue(value=inner.id)]
    )
    assert inner.id and outer.id
    found = list(pg_sdk.users.list(filter='userName eq "GRACE@example.com"'))
    assert [u.id for u in found] == [user.id]
    got = pg_sdk.groups.get(outer.id)
    assert [m.value for m in got.members or []] == [inner.id]
    pg_sdk.users.patch(
        user.id,
        operations=[iam.Patch(op=iam.PatchOp.REPLACE, path="displayName", value="Grace H.")],
        schemas=[iam.PatchSchema.URN_IETF_PARAMS_SCIM_API_MESSAGES_2_0_PATCH_OP],
    )
    assert pg_sdk.users.get(user.id).display_name == "Grace H."
    pg_sdk.groups.delete(outer.id)
    pg_sdk.groups.delete(inner.id)
    pg_sdk.users.delete(user.id)
    with pytest.raises(ResourceDoesNotExist):
        pg_sdk.users.get(user.id)


def test_secrets(pg_server: Server, pg_sdk: WorkspaceClient, database_url: str) -> None:
    import psycopg

    user = pg_sdk.users.create(user_name="ida@example.com")
    assert user.id
    group = pg_sdk.groups.create(
        display_name="pg-readers", members=[iam.ComplexValue(value=user.id)]
    )
    with pg_server.client() as admin:
        r = admin.post(
            "/api/2.0/token-management/on-behalf-of/tokens", json={"application_id": user.id}
        )
        assert r.status_code == 200, r.text
        user_sdk = client_for(pg_server, r.json()["token_value"])

    plain = "pg-plaintext-5e1f"
    raw = b"\x00\x01pg-bytes\xff"
    pg_sdk.secrets.create_scope("pg-scope")
    pg_sdk.secrets.put_secret("pg-scope", "text", string_value=plain)
    pg_sdk.secrets.put_secret("pg-scope", "blob", bytes_value=base64.b64encode(raw).decode())
    assert [s.key for s in pg_sdk.secrets.list_secrets("pg-scope")] == ["blob", "text"]
    assert pg_sdk.dbutils.secrets.get("pg-scope", "text") == plain
    assert pg_sdk.dbutils.secrets.getBytes("pg-scope", "blob") == raw

    with pytest.raises(PermissionDenied):
        user_sdk.secrets.get_secret("pg-scope", "text")
    pg_sdk.secrets.put_acl("pg-scope", group.display_name or "", AclPermission.READ)
    assert user_sdk.dbutils.secrets.get("pg-scope", "text") == plain
    with pytest.raises(PermissionDenied):
        user_sdk.secrets.put_secret("pg-scope", "text", string_value="no")
    acls = {a.principal: a.permission for a in pg_sdk.secrets.list_acls("pg-scope")}
    assert acls["pg-readers"] == AclPermission.READ

    with psycopg.connect(database_url) as conn:
        stored = conn.execute("SELECT value_encrypted FROM secrets").fetchall()
    assert len(stored) == 2
    for (ciphertext,) in stored:
        assert plain.encode() not in bytes(ciphertext)
        assert b"pg-bytes" not in bytes(ciphertext)

    pg_sdk.secrets.delete_scope("pg-scope")
    with psycopg.connect(database_url) as conn:
        left = conn.execute("SELECT count(*) FROM secrets").fetchone()
    assert left == (0,)


MLFLOW_SCRIPT = r"""
import json, os
import mlflow
import numpy as np
from mlflow import MlflowClient
from sklearn.linear_model import LogisticRegression

mlflow.set_tracking_uri("databricks")
exp = mlflow.set_experiment("/Users/admin@kiln.local/pg-exp")
X, y = np.array([[0.0], [1.0], [2.0], [3.0]]), np.array([0, 0, 1, 1])
with mlflow.start_run() as run:
    mlflow.log_metric("loss", 0.5)
    info = mlflow.sklearn.log_model(
        LogisticRegression().fit(X, y), name="model", input_example=X[:1],
        pip_requirements=["scikit-learn"],
    )
mv = mlflow.register_model(info.model_uri, "main.default.pg_model")
client = MlflowClient()
client.set_registered_model_alias("main.default.pg_model", "champion", mv.version)
by_alias = client.get_model_version_by_alias("main.default.pg_model", "champion")
metrics = client.get_run(run.info.run_id).data.metrics
out = {"exp": exp.experiment_id, "metrics": metrics, "alias": by_alias.version}
print("RESULT " + json.dumps(out))
"""


@pytest.mark.slow
def test_mlflow_on_postgres(pg_server: Server, database_url: str) -> None:
    """MLflow's store is schema `mlflow` of Kiln's database, driven by the mlflow client."""
    import os
    import subprocess
    import sys

    import psycopg

    env = {"DATABRICKS_HOST": pg_server.url, "DATABRICKS_TOKEN": pg_server.token}
    proc = subprocess.run(
        [sys.executable, "-c", MLFLOW_SCRIPT],
        env={**os.environ, **env, "MLFLOW_TRACKING_URI": "databricks"},
        capture_output=True,
        text=True,
        timeout=400,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stdout + proc.stderr
    result = json.loads(lines[-1][len("RESULT ") :])
    assert result["metrics"] == {"loss": 0.5} and result["alias"] == "1"
    assert not (pg_server.data_dir / "mlflow.db").exists()
    with psycopg.connect(database_url) as conn:
        exp = conn.execute(
            "SELECT name FROM mlflow.experiments WHERE experiment_id = %s", (int(result["exp"]),)
        ).fetchone()
        alias = conn.execute(
            "SELECT version FROM mlflow.registered_model_aliases WHERE alias = 'champion'"
        ).fetchone()
        obj = conn.execute(
            "SELECT object_type FROM workspace_objects WHERE path = %s",
            ("/Users/admin@kiln.local/pg-exp",),
        ).fetchone()
    assert exp == ("/Users/admin@kiln.local/pg-exp",)
    assert alias == (1,)
    assert obj == ("MLFLOW_EXPERIMENT",)


def test_restart_keeps_state(pg_server: Server, database_url: str, data_dir: Path) -> None:
    with pg_server.client() as admin:
        r = admin.post("/api/2.0/secrets/scopes/create", json={"scope": "survives"})
        assert r.status_code == 200, r.text
        r = admin.post(
            "/api/2.0/secrets/put",
            json={"scope": "survives", "key": "k", "string_value": "still here"},
        )
        assert r.status_code == 200, r.text
    assert stop_server_process(pg_server.process) == 0
    again = start_server(data_dir, env={"KILN_DATABASE_URL": database_url})
    try:
        # Same admin token (no second bootstrap), same key: the value still decrypts.
        assert again.token == pg_server.token
        sdk = WorkspaceClient(host=again.url, token=again.token, auth_type="pat")
        assert sdk.dbutils.secrets.get("survives", "k") == "still here"
        with httpx.Client(base_url=again.url) as anonymous:
            assert anonymous.get("/api/2.0/secrets/scopes/list").status_code == 401
    finally:
        stop_server_process(again.process)
