"""dbutils without a control plane: `file:/` paths, exit, task values, restart, binding and
help, in a context faked by a small host."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from kiln.driver.dbutils import (
    EXIT_MIME,
    RESTART_MIME,
    TASK_VALUE_MIME,
    DBUtils,
    ExecutionError,
    FileInfo,
    NotebookExit,
    RunBinding,
    attach,
    bind_run,
    pop_parameters,
    push_parameters,
)


class FakeHost:
    """A context host that records what dbutils emits and asks for."""

    cluster_id = "c-1"
    context_id = "ctx-1"
    user_name = "someone@example.com"
    api_url = "http://127.0.0.1:9"  # nothing listens: these tests never reach the API
    token = "dapi-fake-token"
    dbfs_root: str | None = None

    def __init__(self) -> None:
        self.outputs: list[dict[str, Any]] = []
        self.restarts = 0

    def emit(self, output: dict[str, Any]) -> None:
        self.outputs.append(output)

    def request_restart(self) -> None:
        self.restarts += 1


@pytest.fixture
def host() -> FakeHost:
    return FakeHost()


@pytest.fixture
def dbutils(host: FakeHost) -> DBUtils:
    return attach(host).dbutils


def test_fs_on_local_files(
    dbutils: DBUtils, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = f"file:{tmp_path}"
    assert dbutils.fs.mkdirs(f"{base}/d/e") is True
    assert dbutils.fs.put(f"{base}/d/a.txt", "héllo") is True
    assert "Wrote 6 bytes." in capsys.readouterr().out
    with pytest.raises(ExecutionError, match="FileAlreadyExistsException"):
        dbutils.fs.put(f"{base}/d/a.txt", "again")
    dbutils.fs.put(f"{base}/d/a.txt", "hello world", overwrite=True)
    assert dbutils.fs.head(f"{base}/d/a.txt") == "hello world"
    assert dbutils.fs.head(f"{base}/d/a.txt", 5) == "hello"
    assert "[Truncated to first 5 bytes]" in capsys.readouterr().out
    listing = dbutils.fs.ls(f"{base}/d")
    assert [(f.name, f.size) for f in listing] == [("a.txt", 11), ("e/", 0)]
    assert listing[0] == FileInfo(
        f"file:{tmp_path}/d/a.txt", "a.txt", 11, listing[0].modificationTime
    )
    assert listing[1].path == f"file:{tmp_path}/d/e/" and listing[1].isDir()
    assert listing[0].modificationTime > 0 and listing[0].isFile()
    # cp of a file, and of a directory only with recurse.
    dbutils.fs.cp(f"{base}/d/a.txt", f"{base}/copy.txt")
    assert (tmp_path / "copy.txt").read_text() == "hello world"
    with pytest.raises(ExecutionError, match="use recurse=True"):
        dbutils.fs.cp(f"{base}/d", f"{base}/d2")
    dbutils.fs.cp(f"{base}/d", f"{base}/d2", recurse=True)
    assert (tmp_path / "d2" / "a.txt").read_text() == "hello world"
    assert (tmp_path / "d2" / "e").is_dir()
    # Into an existing directory, under the source's name.
    dbutils.fs.cp(f"{base}/copy.txt", f"{base}/d2")
    assert (tmp_path / "d2" / "copy.txt").exists()
    dbutils.fs.mv(f"{base}/copy.txt", f"{base}/moved.txt")
    assert not (tmp_path / "copy.txt").exists() and (tmp_path / "moved.txt").exists()
    with pytest.raises(ExecutionError, match="onto or into itself"):
        dbutils.fs.cp(f"{base}/d2", f"{base}/d2/inner", recurse=True)
    with pytest.raises(ExecutionError, match="non-empty directory"):
        dbutils.fs.rm(f"{base}/d2")
    assert dbutils.fs.rm(f"{base}/d2", recurse=True) is True
    assert dbutils.fs.rm(f"{base}/d2") is False
    with pytest.raises(ExecutionError, match=r"java\.io\.FileNotFoundException"):
        dbutils.fs.ls(f"{base}/nope")
    with pytest.raises(ExecutionError, match=r"java\.io\.FileNotFoundException"):
        dbutils.fs.head(f"{base}/nope")
    with pytest.raises(ExecutionError, match="Cannot head a directory"):
        dbutils.fs.head(f"{base}/d")
    with pytest.raises(ExecutionError, match="maxBytes"):
        dbutils.fs.head(f"{base}/d/a.txt", -1)
    with pytest.raises(ExecutionError, match="contents must be a str"):
        dbutils.fs.put(f"{base}/x", b"bytes")  # type: ignore[arg-type]
    assert [m.mountPoint for m in dbutils.fs.mounts()] == ["/", "/Volumes"]
    with pytest.raises(ExecutionError, match="no mounts"):
        dbutils.fs.mount("s3a://b", "/mnt/b")


def test_exit_outside_and_inside_a_run(dbutils: DBUtils, host: FakeHost) -> None:
    with pytest.raises(NotebookExit) as raised:
        dbutils.notebook.exit("done")
    assert raised.value.value == "done"
    assert host.outputs == []  # an interactive context gets only the exception
    namespace = {"dbutils": dbutils}
    bind_run(namespace, RunBinding("/Users/a/nb", run_id="r1").to_json())
    with pytest.raises(NotebookExit):
        dbutils.notebook.exit(42)  # type: ignore[arg-type]
    assert host.outputs[-1]["data"][EXIT_MIME] == {"value": "42"}
    assert host.outputs[-1]["data"]["text/plain"] == "Notebook exited: 42"
    assert not isinstance(NotebookExit("x"), Exception)  # `except Exception` cannot swallow it


def test_task_values(dbutils: DBUtils, host: FakeHost) -> None:
    task_values = dbutils.jobs.taskValues
    with pytest.raises(TypeError, match="debugValue"):
        task_values.get("up", "k")
    assert task_values.get("up", "k", debugValue=7) == 7
    task_values.set("k", {"a": [1, 2]})
    assert host.outputs == []  # nothing to report outside a run
    binding = RunBinding("/nb", run_id="r", task_values={"up": {"n": 3}}, task_key="me")
    dbutils._bind(binding)
    task_values.set("count", 5)
    assert host.outputs[-1]["data"][TASK_VALUE_MIME] == {"key": "count", "value": 5}
    assert task_values.get("up", "n") == 3
    assert task_values.get("up", "missing", default="d") == "d"
    assert task_values.get("me", "count") == 5
    with pytest.raises(ValueError, match="set no value"):
        task_values.get("up", "missing")
    with pytest.raises(ValueError, match="not an upstream task"):
        task_values.get("other", "n")
    for bad_key, bad_value in (("", 1), ("x" * 129, 1), ("k", object()), ("k", "x" * 50_000)):
        with pytest.raises(ExecutionError):
            task_values.set(bad_key, bad_value)


def test_restart_python(dbutils: DBUtils, host: FakeHost) -> None:
    dbutils.library.restartPython()
    assert host.restarts == 1 and host.outputs == []
    dbutils._bind(RunBinding("/nb", run_id="r"))
    dbutils.library.restartPython()
    assert host.restarts == 2
    assert RESTART_MIME in host.outputs[-1]["data"]


def test_binding_sets_widget_parameters(dbutils: DBUtils) -> None:
    namespace = {"dbutils": dbutils}
    bind_run(namespace, RunBinding("/nb", parameters={"a": "1"}).to_json())
    push_parameters(namespace, json.dumps({"b": "2"}))
    assert dbutils.widgets.getAll() == {"a": "1", "b": "2"}
    pop_parameters(namespace)
    assert dbutils.widgets.getAll() == {"a": "1"}
    with pytest.raises(ExecutionError, match="not available"):
        bind_run({}, RunBinding("/nb").to_json())


def test_notebook_run_refuses_bad_arguments(dbutils: DBUtils) -> None:
    with pytest.raises(ExecutionError, match="needs a notebook"):
        dbutils.notebook.run("./child", 10)
    with pytest.raises(ExecutionError, match="timeout_seconds"):
        dbutils.notebook.run("/child", -1)
    with pytest.raises(ExecutionError, match="timeout_seconds"):
        dbutils.notebook.run("/child", "10")  # type: ignore[arg-type]
    with pytest.raises(ExecutionError, match="str values"):
        dbutils.notebook.run("/child", 10, {"a": 1})  # type: ignore[dict-item]


def test_help_of_every_module(dbutils: DBUtils, capsys: pytest.CaptureFixture[str]) -> None:
    dbutils.help()
    top = capsys.readouterr().out
    for module in ("fs", "jobs", "library", "notebook", "secrets", "widgets"):
        assert f"\n{module}:" in top
    expected = {
        dbutils.fs: ("cp", "head", "ls", "mkdirs", "mounts", "mv", "put", "rm"),
        dbutils.secrets: ("get", "getBytes", "list", "listScopes"),
        dbutils.notebook: ("exit", "run"),
        dbutils.jobs: ("taskValues",),
        dbutils.jobs.taskValues: ("get", "set"),
        dbutils.library: ("restartPython",),
    }
    for module, methods in expected.items():
        module.help()
        out = capsys.readouterr().out
        for method in methods:
            assert f"\n{method}" in out, (module, method)
    assert "help() lists" in repr(dbutils.fs)


def test_the_context_token_is_redacted(host: FakeHost) -> None:
    attached = attach(host)
    out = attached.redact({"output_type": "stream", "name": "stdout", "text": host.token})
    assert out["text"] == "[REDACTED]"


@pytest.mark.parametrize("raw", [True, False], ids=["encoded-environ", "plain-environ"])
def test_a_rebound_context_gets_its_environment_back(
    dbutils: DBUtils, monkeypatch: pytest.MonkeyPatch, raw: bool
) -> None:
    """The second binding puts back the variables the first run added, changed or removed,
    and leaves the others alone (also where os.environ has no encoded dict to compare)."""
    if not raw:
        monkeypatch.setattr("kiln.driver.dbutils.recycle._raw_environ", lambda: None)
    monkeypatch.setenv("KILN_KEPT", "kept")
    monkeypatch.setenv("KILN_CHANGED", "before")
    monkeypatch.setenv("KILN_REMOVED", "there")
    monkeypatch.delenv("KILN_ADDED", raising=False)
    namespace: dict[str, Any] = {"dbutils": dbutils}
    bind_run(namespace, RunBinding("/nb", run_id="r1").to_json())
    monkeypatch.setenv("KILN_ADDED", "new")
    monkeypatch.setenv("KILN_CHANGED", "after")
    monkeypatch.delenv("KILN_REMOVED")
    bind_run(namespace, RunBinding("/nb", run_id="r2").to_json())
    assert "KILN_ADDED" not in os.environ
    assert os.environ["KILN_CHANGED"] == "before"
    assert os.environ["KILN_REMOVED"] == "there"
    assert os.environ["KILN_KEPT"] == "kept"
