"""dbutils against a real `kiln up`: `fs` over the DBFS API and `file:/`, `/dbfs/...` paths
reaching the same store, `secrets` through the Secrets API with redaction, and databricks-sdk's
remote `w.dbutils` on the same APIs. The dbutils here is the one a context gets, built around
a host that points at the server with a user's token."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from databricks.sdk import WorkspaceClient

from kiln.driver.dbutils import (
    REDACTED,
    ApiError,
    Attached,
    DBUtils,
    ExecutionError,
    SecretMetadata,
    attach,
)
from support import Server

_names = itertools.count()


def unique(prefix: str) -> str:
    return f"{prefix}-{os.getpid()}-{next(_names)}"


class Host:
    """A context host pointing at the test server (no /dbfs hooks in the test process)."""

    cluster_id = "no-cluster"
    context_id = "no-context"
    dbfs_root: str | None = None

    def __init__(self, server: Server, token: str, user_name: str) -> None:
        self.api_url = server.url
        self.token = token
        self.user_name = user_name
        self.outputs: list[dict[str, Any]] = []

    def emit(self, output: dict[str, Any]) -> None:
        self.outputs.append(output)

    def request_restart(self) -> None:
        raise AssertionError("not expected here")


@pytest.fixture(scope="module")
def attached(server: Server) -> Iterator[Attached]:
    made = attach(Host(server, server.token, "admin"))
    yield made
    made.close()


@pytest.fixture(scope="module")
def dbutils(attached: Attached) -> DBUtils:
    return attached.dbutils


@pytest.fixture
def folder(dbutils: DBUtils) -> Iterator[str]:
    path = f"dbfs:/tmp/{unique('dbutils')}"
    yield path
    dbutils.fs.rm(path, recurse=True)


def test_fs_over_dbfs(dbutils: DBUtils, folder: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert dbutils.fs.mkdirs(f"{folder}/sub") is True
    assert dbutils.fs.put(f"{folder}/a.txt", "hello dbfs") is True
    assert "Wrote 10 bytes." in capsys.readouterr().out
    with pytest.raises(ApiError) as exists:
        dbutils.fs.put(f"{folder}/a.txt", "again")
    assert exists.value.error_code == "RESOURCE_ALREADY_EXISTS"
    dbutils.fs.put(f"{folder}/a.txt", "hello again", overwrite=True)
    assert dbutils.fs.head(f"{folder}/a.txt") == "hello again"
    assert dbutils.fs.head(folder.removeprefix("dbfs:") + "/a.txt", 5) == "hello"
    listing = dbutils.fs.ls(folder)
    assert [(f.path, f.name, f.size) for f in listing] == [
        (f"{folder}/a.txt", "a.txt", 11),
        (f"{folder}/sub/", "sub/", 0),
    ]
    assert listing[0].modificationTime > 0
    assert dbutils.fs.ls(f"{folder}/a.txt")[0].name == "a.txt"  # a file lists as itself
    dbutils.fs.cp(f"{folder}/a.txt", f"{folder}/sub")
    assert dbutils.fs.head(f"{folder}/sub/a.txt") == "hello again"
    dbutils.fs.mv(f"{folder}/sub", f"{folder}/moved", recurse=True)
    assert [f.name for f in dbutils.fs.ls(folder)] == ["a.txt", "moved/"]
    with pytest.raises(ExecutionError, match="non-empty directory"):
        dbutils.fs.rm(f"{folder}/moved")
    assert dbutils.fs.rm(f"{folder}/moved", recurse=True) is True
    assert dbutils.fs.rm(f"{folder}/moved") is False
    with pytest.raises(ExecutionError, match=r"java\.io\.FileNotFoundException"):
        dbutils.fs.ls(f"{folder}/nope")
    with pytest.raises(ExecutionError, match=r"java\.io\.FileNotFoundException"):
        dbutils.fs.head(f"{folder}/nope")
    with pytest.raises(ExecutionError, match="No FileSystem for scheme"):
        dbutils.fs.ls("s3a://bucket/x")
    with pytest.raises(ExecutionError, match=r"'\.\.'"):
        dbutils.fs.ls("dbfs:/tmp/../etc")
    with pytest.raises(ApiError) as reserved:
        dbutils.fs.ls("dbfs:/.kiln-staging")
    assert reserved.value.error_code == "INVALID_PARAMETER_VALUE"


def test_fs_across_filesystems(dbutils: DBUtils, folder: str, tmp_path: Path) -> None:
    # Three DBFS blocks and a bit: the copy goes through create/add-block/close and read.
    data = os.urandom(3 * 1024 * 1024 + 17)
    (tmp_path / "src" / "deep").mkdir(parents=True)
    (tmp_path / "src" / "deep" / "big.bin").write_bytes(data)
    (tmp_path / "src" / "small.txt").write_text("small")
    (tmp_path / "src" / "empty").mkdir()
    dbutils.fs.cp(f"file:{tmp_path}/src", f"{folder}/copy", recurse=True)
    assert sorted(f.name for f in dbutils.fs.ls(f"{folder}/copy")) == [
        "deep/",
        "empty/",
        "small.txt",
    ]
    assert dbutils.fs.ls(f"{folder}/copy/deep")[0].size == len(data)
    dbutils.fs.cp(f"{folder}/copy", f"file:{tmp_path}/back", recurse=True)
    assert (tmp_path / "back" / "deep" / "big.bin").read_bytes() == data
    assert (tmp_path / "back" / "empty").is_dir()
    dbutils.fs.mv(f"file:{tmp_path}/src/small.txt", f"{folder}/moved.txt")
    assert not (tmp_path / "src" / "small.txt").exists()
    assert dbutils.fs.head(f"{folder}/moved.txt") == "small"
    big = "x" * (2 * 1024 * 1024)
    dbutils.fs.put(f"{folder}/big.txt", big)  # over one block: written through a handle
    assert len(dbutils.fs.head(f"{folder}/big.txt", 2 * 1024 * 1024)) == len(big)


_DBFS_OPEN = """
import json, os, sys, types
from kiln.driver.dbutils import attach
host = types.SimpleNamespace(cluster_id="c", context_id="x", user_name="u", api_url=sys.argv[1],
    token=sys.argv[2], dbfs_root=sys.argv[3], emit=print, request_restart=lambda: None)
dbutils = attach(host).dbutils
folder = sys.argv[4]
with open(f"/dbfs{folder}/from-open.txt", "w") as f:
    f.write("written with open()")
import pandas as pd
pd.DataFrame({"a": [1, 2]}).to_csv(f"/dbfs{folder}/frame.csv", index=False)
print(json.dumps({
    "via_dbutils": dbutils.fs.head(f"dbfs:{folder}/from-open.txt"),
    "via_open": open(f"/dbfs{folder}/put.txt").read(),
    "listing": sorted(os.listdir(f"/dbfs{folder}")),
    "frame": pd.read_csv(f"/dbfs{folder}/frame.csv")["a"].tolist(),
}))
"""


def test_dbfs_local_paths_reach_the_same_store(
    server: Server, dbutils: DBUtils, folder: str
) -> None:
    path = folder.removeprefix("dbfs:")
    dbutils.fs.put(f"{folder}/put.txt", "written with put")
    root = server.data_dir.resolve() / "dbfs"
    done = subprocess.run(
        [sys.executable, "-c", _DBFS_OPEN, server.url, server.token, str(root), path],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["via_dbutils"] == "written with open()"
    assert out["via_open"] == "written with put"
    assert out["listing"] == ["frame.csv", "from-open.txt", "put.txt"]
    assert out["frame"] == [1, 2]


@pytest.fixture(scope="module")
def scope(admin: httpx.Client) -> Iterator[str]:
    name = unique("dbutils-scope")
    assert admin.post("/api/2.0/secrets/scopes/create", json={"scope": name}).status_code == 200
    for key, value in (("password", "pa55-w0rd-value"), ("token", "tok-12345-abcde")):
        r = admin.post(
            "/api/2.0/secrets/put", json={"scope": name, "key": key, "string_value": value}
        )
        assert r.status_code == 200, r.text
    r = admin.post(
        "/api/2.0/secrets/put",
        json={"scope": name, "key": "binary", "bytes_value": "AAEC/w=="},  # 00 01 02 ff
    )
    assert r.status_code == 200, r.text
    yield name
    admin.post("/api/2.0/secrets/scopes/delete", json={"scope": name})


def test_secrets_and_their_redaction(attached: Attached, scope: str) -> None:
    secrets = attached.dbutils.secrets
    assert scope in [s.name for s in secrets.listScopes()]
    assert scope in [s.getName() for s in secrets.listScopes()]
    assert sorted(secrets.list(scope)) == [
        SecretMetadata("binary"),
        SecretMetadata("password"),
        SecretMetadata("token"),
    ]
    output = {"output_type": "stream", "name": "stdout", "text": "pw=pa55-w0rd-value\n"}
    assert attached.redact(output)["text"] == "pw=pa55-w0rd-value\n"  # not fetched yet
    assert secrets.get(scope, "password") == "pa55-w0rd-value"
    assert attached.redact(output)["text"] == f"pw={REDACTED}\n"
    assert secrets.getBytes(scope, "binary") == b"\x00\x01\x02\xff"
    with pytest.raises(ExecutionError, match="not UTF-8"):
        secrets.get(scope, "binary")
    with pytest.raises(ExecutionError, match="IllegalArgumentException"):
        secrets.get(scope, "missing")
    with pytest.raises(ApiError) as unknown:
        secrets.list("no-such-scope")
    assert unknown.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(ExecutionError, match="non-empty str"):
        secrets.get("", "password")


def test_secrets_act_as_the_context_user(
    server: Server, scope: str, make_user: Callable[..., tuple[str, str]], admin: httpx.Client
) -> None:
    name, token = make_user("dbutils")
    theirs = attach(Host(server, token, name))
    try:
        with pytest.raises(ApiError) as denied:
            theirs.dbutils.secrets.get(scope, "password")
        assert denied.value.error_code == "PERMISSION_DENIED"
        r = admin.post(
            "/api/2.0/secrets/acls/put",
            json={"scope": scope, "principal": name, "permission": "READ"},
        )
        assert r.status_code == 200, r.text
        assert theirs.dbutils.secrets.get(scope, "password") == "pa55-w0rd-value"
    finally:
        theirs.close()


def test_sdk_remote_dbutils(sdk: WorkspaceClient, scope: str, dbutils: DBUtils) -> None:
    folder = f"/tmp/{unique('sdk-dbutils')}"
    try:
        assert sdk.dbutils.fs.put(f"dbfs:{folder}/a.txt", "from the sdk") is True
        assert sdk.dbutils.fs.head(f"dbfs:{folder}/a.txt") == "from the sdk"
        listing = sdk.dbutils.fs.ls(f"dbfs:{folder}")
        assert [(f.name, f.size) for f in listing] == [("a.txt", 12)]
        assert dbutils.fs.ls(f"dbfs:{folder}")[0][1:3] == ("a.txt", 12)  # same shapes
        assert sdk.dbutils.fs.mkdirs(f"dbfs:{folder}/d") is True
        assert sdk.dbutils.secrets.get(scope, "token") == "tok-12345-abcde"
        assert sdk.dbutils.secrets.getBytes(scope, "binary") == b"\x00\x01\x02\xff"
        assert "token" in [m.key for m in sdk.dbutils.secrets.list(scope)]
    finally:
        dbutils.fs.rm(f"dbfs:{folder}", recurse=True)
