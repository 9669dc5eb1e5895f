"""Paths: dbutils.fs paths, notebook paths relative to a notebook, and `/dbfs/...` (pure,
the hooks in a child process so this one keeps its own `open`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from kiln.dbfs.paths import STAGING_DIR as STORE_STAGING_DIR
from kiln.driver.dbutils import ExecutionError, resolve_notebook_path
from kiln.driver.dbutils.fs import parse_fs_path
from kiln.driver.dbutils.local_dbfs import STAGING_DIR, DbfsPaths


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("/tmp/x", ("dbfs", "/tmp/x")),
        ("dbfs:/tmp/x/", ("dbfs", "/tmp/x")),
        ("dbfs:///tmp/x", ("dbfs", "/tmp/x")),
        ("DBFS:/a", ("dbfs", "/a")),
        ("file:/tmp/y", ("file", "/tmp/y")),
        ("file:///tmp/y", ("file", "/tmp/y")),
        ("dbfs:/", ("dbfs", "/")),
        ("/Volumes/c/s/v/f", ("dbfs", "/Volumes/c/s/v/f")),
    ],
)
def test_fs_paths(raw: str, expected: tuple[str, str]) -> None:
    assert parse_fs_path(raw) == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("s3a://bucket/x", "No FileSystem for scheme"),
        ("relative/x", "absolute"),
        ("/a/../b", "'..'"),
        ("", "Bad path"),
        (None, "Bad path"),
    ],
)
def test_bad_fs_paths(raw: object, message: str) -> None:
    with pytest.raises(ExecutionError, match=message):
        parse_fs_path(raw)


@pytest.mark.parametrize(
    ("target", "current", "expected"),
    [
        ("./helper", "/Users/a/project/main", "/Users/a/project/helper"),
        ("helper", "/Users/a/project/main", "/Users/a/project/helper"),
        ("../lib/util", "/Users/a/project/main", "/Users/a/lib/util"),
        ("/Shared/x", None, "/Shared/x"),
        ("/Shared/./y/", "/Users/a/main", "/Shared/y"),
    ],
)
def test_notebook_paths(target: str, current: str | None, expected: str) -> None:
    assert resolve_notebook_path(target, current) == expected


@pytest.mark.parametrize(
    ("target", "current", "message"),
    [
        ("./x", None, "needs a notebook"),
        ("../../../x", "/Users/main", "climbs above"),
        ("", "/Users/a/main", "non-empty"),
        ("/", None, "names no notebook"),
    ],
)
def test_bad_notebook_paths(target: str, current: str | None, message: str) -> None:
    with pytest.raises(ExecutionError, match=message):
        resolve_notebook_path(target, current)


def test_dbfs_paths_map_into_the_root(tmp_path: Path) -> None:
    paths = DbfsPaths(str(tmp_path))
    root = str(tmp_path.resolve())
    assert paths.local("/dbfs/a/b.csv") == f"{root}/a/b.csv"
    assert paths.local("/dbfs") == root
    assert paths.local("/dbfs/a//./c/../d") == f"{root}/a/d"
    assert paths.local(b"/dbfs/x") == f"{root}/x".encode()
    assert paths.local(Path("/dbfs/p")) == f"{root}/p"
    # Anything else passes through untouched (also look-alikes and file descriptors).
    assert paths.local("/dbfsx/a") == "/dbfsx/a"
    assert paths.local("/tmp/a") == "/tmp/a"
    assert paths.local(3) == 3
    with pytest.raises(PermissionError):
        paths.local("/dbfs/../etc/passwd")
    with pytest.raises(PermissionError):
        paths.local(f"/dbfs/{STAGING_DIR}/upload")


def test_staging_name_matches_the_store() -> None:
    assert STAGING_DIR == STORE_STAGING_DIR


_HOOKED = """
import glob, json, os, pathlib, shutil, sys
from kiln.driver.dbutils.local_dbfs import DbfsPaths
DbfsPaths(sys.argv[1]).install()
DbfsPaths(sys.argv[1]).install()  # idempotent
os.makedirs("/dbfs/data/sub", exist_ok=True)
with open("/dbfs/data/a.txt", "w") as f:
    f.write("hello")
pathlib.Path("/dbfs/data/b.json").write_text(json.dumps({"k": 1}))
shutil.copy("/dbfs/data/a.txt", "/dbfs/data/sub/c.txt")
os.rename("/dbfs/data/sub/c.txt", "/dbfs/data/sub/d.txt")
out = {
    "read": open("/dbfs/data/a.txt").read(),
    "json": json.loads(pathlib.Path("/dbfs/data/b.json").read_text()),
    "exists": os.path.exists("/dbfs/data/sub/d.txt"),
    "isdir": os.path.isdir("/dbfs/data"),
    "root": sorted(os.listdir("/dbfs")),
    "scan": sorted(e.name for e in os.scandir("/dbfs")),
    "glob": sorted(glob.glob("/dbfs/data/*.txt")),
    "walk": sorted(f for _, _, fs in os.walk("/dbfs/data") for f in fs),
}
shutil.rmtree("/dbfs/data/sub")
out["after_rmtree"] = os.path.exists("/dbfs/data/sub")
try:
    open("/dbfs/.kiln-staging/x", "w")
except PermissionError:
    out["staging"] = "refused"
print(json.dumps(out))
"""


def test_hooks_route_python_file_apis(tmp_path: Path) -> None:
    (tmp_path / STAGING_DIR).mkdir()
    done = subprocess.run(
        [sys.executable, "-c", _HOOKED, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    import json

    out = json.loads(done.stdout)
    assert out["read"] == "hello"
    assert out["json"] == {"k": 1}
    assert out["exists"] and out["isdir"]
    assert out["root"] == ["data"] and out["scan"] == ["data"]  # the staging area is hidden
    assert out["glob"] == ["/dbfs/data/a.txt"]
    assert out["walk"] == ["a.txt", "b.json", "d.txt"]
    assert out["after_rmtree"] is False
    assert out["staging"] == "refused"
    assert (tmp_path / "data" / "a.txt").read_text() == "hello"
