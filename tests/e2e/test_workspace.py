"""Workspace API 2.0 end to end: databricks-sdk (and the legacy CLI's JSON framing) against Kiln."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import uuid
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import DatabricksError, NotFound, PermissionDenied, ResourceAlreadyExists
from databricks.sdk.service.workspace import (
    ExportFormat,
    ImportFormat,
    Language,
    ObjectType,
)

from support import Server, assert_error

WS = "/api/2.0/workspace"

NOTEBOOKS = {
    Language.PYTHON: (
        "# Databricks notebook source\n"
        "x = 1\nprint(x)\n\n"
        "# COMMAND ----------\n\n"
        "# MAGIC %md\n# MAGIC # Title\n# MAGIC\n# MAGIC Some text.\n\n"
        "# COMMAND ----------\n\n"
        "# MAGIC %sql\n# MAGIC SELECT 1\n\n"
        "# COMMAND ----------\n\n"
        "# DBTITLE 1,Titled\nprint('titled')\n"
    ),
    Language.SQL: (
        "-- Databricks notebook source\n"
        "SELECT *\nFROM range(3)\n\n"
        "-- COMMAND ----------\n\n"
        "-- MAGIC %md\n-- MAGIC # Title\n\n"
        "-- COMMAND ----------\n\n"
        "-- MAGIC %python\n-- MAGIC print(1)\n\n"
        "-- COMMAND ----------\n\n"
        "-- MAGIC %scala\n-- MAGIC val y = 2\n"
    ),
    Language.SCALA: (
        "// Databricks notebook source\n"
        'val x = 1\nprintln("x")\n\n'
        "// COMMAND ----------\n\n"
        "// MAGIC %md\n// MAGIC ## Scala\n\n"
        "// COMMAND ----------\n\n"
        "// MAGIC %sql\n// MAGIC SELECT 2\n"
    ),
    Language.R: (
        "# Databricks notebook source\n"
        "x <- 1\nprint(x)\n\n"
        "# COMMAND ----------\n\n"
        "# MAGIC %md\n# MAGIC # R notes\n\n"
        "# COMMAND ----------\n\n"
        "# MAGIC %python\n# MAGIC print(3)\n"
    ),
}
# Each notebook's cells as Jupyter shows them: (cell_type, language magic or None).
JUPYTER_CELLS = {
    Language.PYTHON: [("code", None), ("markdown", None), ("code", "%sql"), ("code", None)],
    Language.SQL: [("code", None), ("markdown", None), ("code", "%python"), ("code", "%scala")],
    Language.SCALA: [("code", None), ("markdown", None), ("code", "%sql")],
    Language.R: [("code", None), ("markdown", None), ("code", "%python")],
}


@pytest.fixture(scope="module")
def home(sdk: WorkspaceClient) -> str:
    """The admin's home folder."""
    return f"/Users/{sdk.current_user.me().user_name}"


@pytest.fixture
def folder(sdk: WorkspaceClient, home: str) -> Iterator[str]:
    """A fresh folder in the admin's home, removed afterwards."""
    path = f"{home}/t-{uuid.uuid4().hex[:10]}"
    sdk.workspace.mkdirs(path)
    yield path
    sdk.workspace.delete(path, recursive=True)


def user_client(server: Server, token: str) -> WorkspaceClient:
    return WorkspaceClient(host=server.url, token=token, auth_type="pat")


def b64(data: bytes | str) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return base64.b64encode(raw).decode()


# --- Happy paths ----------------------------------------------------------------------------


def test_home_users_and_shared_are_created_on_first_use(
    server: Server, make_user: Callable[..., tuple[str, str]]
) -> None:
    name, token = make_user("ws-first")
    w = user_client(server, token)
    top = {o.path: o.object_type for o in w.workspace.list("/")}
    assert top["/Users"] == ObjectType.DIRECTORY
    assert top["/Shared"] == ObjectType.DIRECTORY
    status = w.workspace.get_status(f"/Users/{name}")
    assert status.object_type == ObjectType.DIRECTORY
    assert status.object_id and status.object_id > 0
    # Other users' homes are not listed for a non-admin.
    assert [o.path for o in w.workspace.list("/Users")] == [f"/Users/{name}"]


def test_a_deleted_home_is_made_again_on_next_use(
    server: Server, sdk: WorkspaceClient, make_user: Callable[..., tuple[str, str]]
) -> None:
    name, token = make_user("ws-rehome")
    w = user_client(server, token)
    w.workspace.mkdirs(f"/Users/{name}/sub")
    assert w.workspace.get_status(f"/Users/{name}/sub").object_type == ObjectType.DIRECTORY
    sdk.workspace.delete(f"/Users/{name}", recursive=True)
    # The home comes back empty on the user's next call (however often it was seen before).
    assert w.workspace.get_status(f"/Users/{name}").object_type == ObjectType.DIRECTORY
    assert list(w.workspace.list(f"/Users/{name}")) == []


@pytest.mark.parametrize("language", list(Language), ids=lambda lang: lang.value)
def test_source_and_jupyter_round_trip(
    sdk: WorkspaceClient, folder: str, language: Language
) -> None:
    source = NOTEBOOKS[language]
    path = f"{folder}/nb-{language.value.lower()}"
    sdk.workspace.upload(path, source.encode(), format=ImportFormat.SOURCE, language=language)
    assert sdk.workspace.download(path).read().decode() == source

    status = sdk.workspace.get_status(path)
    assert status.object_type == ObjectType.NOTEBOOK
    assert status.language == language
    assert status.size == len(source.encode())

    exported = sdk.workspace.export(path, format=ExportFormat.JUPYTER)
    assert exported.file_type == "ipynb"
    document = json.loads(base64.b64decode(exported.content or ""))
    meta = document["metadata"]["application/vnd.databricks.v1+notebook"]
    assert meta["language"] == language.value.lower()
    first_lines = ["".join(c["source"]).split("\n")[0] for c in document["cells"]]
    cells = [
        (c["cell_type"], line if line.startswith("%") else None)
        for c, line in zip(document["cells"], first_lines, strict=True)
    ]
    assert cells == JUPYTER_CELLS[language]

    copy = f"{path}-copy"
    ipynb = base64.b64decode(exported.content or "")
    sdk.workspace.upload(copy, ipynb, format=ImportFormat.JUPYTER)
    assert sdk.workspace.get_status(copy).language == language
    assert sdk.workspace.download(copy, format=ExportFormat.SOURCE).read().decode() == source


def test_source_export_file_types(sdk: WorkspaceClient, folder: str) -> None:
    for language, extension in [
        (Language.PYTHON, "py"),
        (Language.SQL, "sql"),
        (Language.SCALA, "scala"),
        (Language.R, "r"),
    ]:
        path = f"{folder}/ft-{extension}"
        sdk.workspace.upload(path, NOTEBOOKS[language].encode(), language=language)
        exported = sdk.workspace.export(path, format=ExportFormat.SOURCE)
        assert exported.file_type == extension
        assert base64.b64decode(exported.content or "").decode() == NOTEBOOKS[language]


def test_upload_infers_language_from_suffix(sdk: WorkspaceClient, folder: str) -> None:
    # The SDK maps `.sql` to SQL itself; Databricks keeps the name as given for SOURCE.
    sdk.workspace.upload(f"{folder}/query.sql", b"SELECT 42")
    status = sdk.workspace.get_status(f"{folder}/query.sql")
    assert status.language == Language.SQL
    text = sdk.workspace.download(f"{folder}/query.sql").read().decode()
    assert text == "-- Databricks notebook source\nSELECT 42\n"


def test_jupyter_from_plain_jupyter_through_json_import(sdk: WorkspaceClient, folder: str) -> None:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Hello"), nbformat.v4.new_code_cell("print(2)")]
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "P"}
    path = f"{folder}/plain"
    sdk.workspace.import_(path, content=b64(nbformat.writes(nb)), format=ImportFormat.JUPYTER)
    assert sdk.workspace.get_status(path).language == Language.PYTHON
    text = sdk.workspace.download(path).read().decode()
    assert text == (
        "# Databricks notebook source\n# MAGIC %md\n# MAGIC # Hello\n\n"
        "# COMMAND ----------\n\nprint(2)\n"
    )


def test_auto_import_makes_notebooks_and_files(sdk: WorkspaceClient, folder: str) -> None:
    sdk.workspace.upload(
        f"{folder}/job.py", NOTEBOOKS[Language.PYTHON].encode(), format=ImportFormat.AUTO
    )
    notebook = sdk.workspace.get_status(f"{folder}/job")
    assert (notebook.object_type, notebook.language) == (ObjectType.NOTEBOOK, Language.PYTHON)

    sdk.workspace.upload(
        f"{folder}/helper.py", b"def f():\n    return 1\n", format=ImportFormat.AUTO
    )
    sdk.workspace.upload(f"{folder}/data.csv", b"a,b\n1,2\n", format=ImportFormat.AUTO)
    for name, body in [("helper.py", b"def f():\n    return 1\n"), ("data.csv", b"a,b\n1,2\n")]:
        status = sdk.workspace.get_status(f"{folder}/{name}")
        assert status.object_type == ObjectType.FILE
        assert status.language is None
        assert status.size == len(body)
        assert sdk.workspace.download(f"{folder}/{name}").read() == body

    ipynb = base64.b64decode(
        sdk.workspace.export(f"{folder}/job", format=ExportFormat.JUPYTER).content or ""
    )
    sdk.workspace.upload(f"{folder}/again.ipynb", ipynb, format=ImportFormat.AUTO)
    assert sdk.workspace.get_status(f"{folder}/again").object_type == ObjectType.NOTEBOOK


def test_raw_import_keeps_bytes(sdk: WorkspaceClient, folder: str) -> None:
    blob = bytes(range(256)) * 4
    sdk.workspace.upload(f"{folder}/blob.bin", blob, format=ImportFormat.RAW)
    assert sdk.workspace.get_status(f"{folder}/blob.bin").object_type == ObjectType.FILE
    assert sdk.workspace.download(f"{folder}/blob.bin", format=ExportFormat.RAW).read() == blob
    exported = sdk.workspace.export(f"{folder}/blob.bin")
    assert (base64.b64decode(exported.content or ""), exported.file_type) == (blob, "bin")


def test_overwrite_replaces_content_and_keeps_id(sdk: WorkspaceClient, folder: str) -> None:
    path = f"{folder}/ow"
    sdk.workspace.upload(path, b"print(1)", language=Language.PYTHON)
    first = sdk.workspace.get_status(path)
    with pytest.raises(ResourceAlreadyExists):
        sdk.workspace.upload(path, b"print(2)", language=Language.PYTHON)
    sdk.workspace.upload(path, b"SELECT 2", language=Language.SQL, overwrite=True)
    second = sdk.workspace.get_status(path)
    assert second.object_id == first.object_id
    assert second.language == Language.SQL
    assert sdk.workspace.download(path).read() == b"-- Databricks notebook source\nSELECT 2\n"


def test_list_and_get_status_fields(sdk: WorkspaceClient, admin: httpx.Client, folder: str) -> None:
    sdk.workspace.mkdirs(f"{folder}/sub")
    sdk.workspace.upload(f"{folder}/nb", b"print(1)", language=Language.PYTHON)
    sdk.workspace.upload(f"{folder}/f.txt", b"hello", format=ImportFormat.RAW)

    body = admin.get(f"{WS}/list", params={"path": folder}).json()
    by_path = {o["path"]: o for o in body["objects"]}
    assert set(by_path) == {f"{folder}/sub", f"{folder}/nb", f"{folder}/f.txt"}
    nb, f, sub = by_path[f"{folder}/nb"], by_path[f"{folder}/f.txt"], by_path[f"{folder}/sub"]
    assert nb["object_type"] == "NOTEBOOK" and nb["language"] == "PYTHON"
    assert f["object_type"] == "FILE" and f["size"] == 5 and "language" not in f
    assert sub["object_type"] == "DIRECTORY" and "size" not in sub
    for obj in (nb, f, sub):
        assert isinstance(obj["object_id"], int)
        assert obj["resource_id"] == str(obj["object_id"])
        assert obj["created_at"] > 0 and obj["modified_at"] >= obj["created_at"]

    status = admin.get(f"{WS}/get-status", params={"path": f"{folder}/nb"}).json()
    assert status == nb
    # Listing a notebook returns the notebook itself; an empty folder has no `objects`.
    assert [o.path for o in sdk.workspace.list(f"{folder}/nb")] == [f"{folder}/nb"]
    assert admin.get(f"{WS}/list", params={"path": f"{folder}/sub"}).json() == {}
    assert list(sdk.workspace.list(f"{folder}/sub")) == []


def test_list_recursive_and_modified_after(sdk: WorkspaceClient, folder: str) -> None:
    sdk.workspace.mkdirs(f"{folder}/a/b")
    sdk.workspace.upload(f"{folder}/a/b/deep", b"print(1)", language=Language.PYTHON)
    sdk.workspace.upload(f"{folder}/top", b"print(1)", language=Language.PYTHON)
    paths = {o.path for o in sdk.workspace.list(folder, recursive=True)}
    assert paths == {f"{folder}/a/b/deep", f"{folder}/top"}
    top = sdk.workspace.get_status(f"{folder}/top")
    later = [o.path for o in sdk.workspace.list(folder, notebooks_modified_after=top.modified_at)]
    assert later == [f"{folder}/a"]


def test_mkdirs_creates_parents_and_is_idempotent(sdk: WorkspaceClient, folder: str) -> None:
    deep = f"{folder}/x/y/z"
    sdk.workspace.mkdirs(deep)
    sdk.workspace.mkdirs(deep)
    for path in (f"{folder}/x", f"{folder}/x/y", deep):
        assert sdk.workspace.get_status(path).object_type == ObjectType.DIRECTORY


def test_delete_object_and_recursive_folder(sdk: WorkspaceClient, folder: str) -> None:
    sdk.workspace.mkdirs(f"{folder}/tree/inner")
    sdk.workspace.upload(f"{folder}/tree/inner/nb", b"print(1)", language=Language.PYTHON)
    sdk.workspace.upload(f"{folder}/tree-sibling", b"print(1)", language=Language.PYTHON)
    sdk.workspace.upload(f"{folder}/single", b"print(1)", language=Language.PYTHON)
    sdk.workspace.delete(f"{folder}/single")
    sdk.workspace.delete(f"{folder}/tree", recursive=True)
    for gone in (f"{folder}/single", f"{folder}/tree", f"{folder}/tree/inner/nb"):
        with pytest.raises(NotFound):
            sdk.workspace.get_status(gone)
    # A sibling whose name merely starts with the folder's name survives.
    assert sdk.workspace.get_status(f"{folder}/tree-sibling").object_type == ObjectType.NOTEBOOK


def test_delete_recursive_is_case_sensitive(sdk: WorkspaceClient, folder: str) -> None:
    sdk.workspace.mkdirs(f"{folder}/Case/x")
    sdk.workspace.mkdirs(f"{folder}/case/x")
    sdk.workspace.delete(f"{folder}/Case", recursive=True)
    assert sdk.workspace.get_status(f"{folder}/case/x").object_type == ObjectType.DIRECTORY


def test_export_html(sdk: WorkspaceClient, admin: httpx.Client, folder: str) -> None:
    path = f"{folder}/page"
    source = NOTEBOOKS[Language.PYTHON].replace("Some text.", "Some <b>text</b>.")
    sdk.workspace.upload(path, source.encode(), language=Language.PYTHON)
    exported = sdk.workspace.export(path, format=ExportFormat.HTML)
    assert exported.file_type == "html"
    page = base64.b64decode(exported.content or "").decode()
    assert page.startswith("<!DOCTYPE html>")
    assert "<h1>Title</h1>" in page
    assert "Some &lt;b&gt;text&lt;/b&gt;." in page
    assert "SELECT 1" in page
    # The page carries its notebook: importing it back gives the same source.
    sdk.workspace.upload(f"{path}-back", page.encode(), format=ImportFormat.HTML)
    assert sdk.workspace.download(f"{path}-back").read().decode() == source

    r = admin.get(
        f"{WS}/export", params={"path": path, "format": "HTML", "direct_download": "true"}
    )
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/octet-stream"
    assert r.headers["content-disposition"] == "attachment; filename*=UTF-8''page.html"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.text == page


def test_dbc_and_source_folder_exports_import_elsewhere(sdk: WorkspaceClient, folder: str) -> None:
    project = f"{folder}/proj"
    sdk.workspace.mkdirs(f"{project}/lib")
    sdk.workspace.upload(
        f"{project}/main", NOTEBOOKS[Language.PYTHON].encode(), language=Language.PYTHON
    )
    sdk.workspace.upload(
        f"{project}/lib/q", NOTEBOOKS[Language.SQL].encode(), language=Language.SQL
    )
    sdk.workspace.upload(f"{project}/lib/data.txt", b"not a notebook", format=ImportFormat.RAW)

    dbc = sdk.workspace.export(project, format=ExportFormat.DBC)
    assert dbc.file_type == "dbc"
    with zipfile.ZipFile(io.BytesIO(base64.b64decode(dbc.content or ""))) as archive:
        assert sorted(archive.namelist()) == ["proj/lib/q.sql", "proj/main.python"]
    sdk.workspace.import_(f"{folder}/from-dbc", content=dbc.content, format=ImportFormat.DBC)
    assert (
        sdk.workspace.download(f"{folder}/from-dbc/lib/q").read().decode()
        == (NOTEBOOKS[Language.SQL])
    )

    zipped = sdk.workspace.export(project, format=ExportFormat.SOURCE)
    assert zipped.file_type == "zip"
    with zipfile.ZipFile(io.BytesIO(base64.b64decode(zipped.content or ""))) as archive:
        assert sorted(archive.namelist()) == ["proj/lib/q.sql", "proj/main.py"]
    sdk.workspace.import_(f"{folder}/from-zip", content=zipped.content, format=ImportFormat.SOURCE)
    assert sdk.workspace.get_status(f"{folder}/from-zip/main").language == Language.PYTHON

    auto = sdk.workspace.export(project, format=ExportFormat.AUTO)
    with zipfile.ZipFile(io.BytesIO(base64.b64decode(auto.content or ""))) as archive:
        assert "proj/lib/data.txt" in archive.namelist()


def test_single_notebook_dbc_round_trip(sdk: WorkspaceClient, folder: str) -> None:
    sdk.workspace.upload(
        f"{folder}/one", NOTEBOOKS[Language.SCALA].encode(), language=Language.SCALA
    )
    dbc = sdk.workspace.export(f"{folder}/one", format=ExportFormat.DBC)
    sdk.workspace.import_(f"{folder}/two", content=dbc.content, format=ImportFormat.DBC)
    two = sdk.workspace.get_status(f"{folder}/two")
    assert (two.object_type, two.language) == (ObjectType.NOTEBOOK, Language.SCALA)
    assert sdk.workspace.download(f"{folder}/two").read().decode() == NOTEBOOKS[Language.SCALA]


def test_legacy_cli_text_json_framing(server: Server, folder: str) -> None:
    # databricks-cli 0.18 posts `Content-Type: text/json` with base64 content and JSON bools.
    headers = {"Authorization": f"Bearer {server.token}", "Content-Type": "text/json"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=60) as cli:
        body = {
            "path": f"{folder}/legacy",
            "format": "SOURCE",
            "language": "R",
            "content": b64(NOTEBOOKS[Language.R]),
            "overwrite": False,
        }
        assert cli.post(f"{WS}/import", content=json.dumps(body)).status_code == 200
        listed = cli.get(f"{WS}/list", params={"path": folder}).json()["objects"]
        assert listed[0]["path"] == f"{folder}/legacy" and listed[0]["language"] == "R"
        out = cli.get(f"{WS}/export", params={"path": f"{folder}/legacy", "format": "SOURCE"})
        assert base64.b64decode(out.json()["content"]).decode() == NOTEBOOKS[Language.R]
        r = cli.post(
            f"{WS}/delete", content=json.dumps({"path": f"{folder}/legacy", "recursive": False})
        )
        assert r.status_code == 200


def test_legacy_cli_import_dir_and_export_dir(server: Server, folder: str, tmp_path: Path) -> None:
    from databricks_cli.sdk.api_client import ApiClient
    from databricks_cli.workspace.api import WorkspaceApi

    client = ApiClient(host=server.url, token=server.token)
    client.url = f"{server.url}/api/"  # the CLI drops the port from its host; put it back
    api = WorkspaceApi(client)
    source = tmp_path / "src"
    (source / "sub").mkdir(parents=True)
    files = {
        "a.py": NOTEBOOKS[Language.PYTHON],
        "b.sql": NOTEBOOKS[Language.SQL],
        "sub/c.scala": NOTEBOOKS[Language.SCALA],
        "sub/d.r": NOTEBOOKS[Language.R],
    }
    for name, text in files.items():
        (source / name).write_text(text)
    target = f"{folder}/imported"
    api.import_workspace_dir(str(source), target, overwrite=False, exclude_hidden_files=True)
    listed = {(o.basename, o.object_type, o.language) for o in api.list_objects(target)}
    assert listed == {
        ("a", "NOTEBOOK", "PYTHON"),
        ("b", "NOTEBOOK", "SQL"),
        ("sub", "DIRECTORY", None),
    }
    out = tmp_path / "out"
    api.export_workspace_dir(target, str(out), overwrite=False)
    for name, text in files.items():
        assert (out / name).read_text() == text
    assert api.get_status(f"{target}/sub/d").language == "R"
    api.delete(target, is_recursive=True)
    assert api.list_objects(folder) == []


def test_workspace_prefix_is_an_alias(sdk: WorkspaceClient, folder: str) -> None:
    sdk.workspace.upload(f"/Workspace{folder}/aliased", b"print(1)", language=Language.PYTHON)
    assert sdk.workspace.get_status(f"{folder}/aliased").path == f"{folder}/aliased"


def test_non_admin_is_confined_to_home_and_shared(
    server: Server, make_user: Callable[..., tuple[str, str]], home: str
) -> None:
    name, token = make_user("ws-confined")
    w = user_client(server, token)
    mine = f"/Users/{name}/nb"
    w.workspace.upload(mine, b"print(1)", language=Language.PYTHON)
    shared = f"/Shared/{uuid.uuid4().hex[:8]}"
    w.workspace.mkdirs(shared)
    w.workspace.upload(f"{shared}/nb", b"print(1)", language=Language.PYTHON)
    w.workspace.delete(shared, recursive=True)

    with pytest.raises(PermissionDenied):
        w.workspace.get_status(home)
    with pytest.raises(PermissionDenied):
        w.workspace.list(home).__next__()
    with pytest.raises(PermissionDenied):
        w.workspace.upload(f"{home}/intruder", b"print(1)", language=Language.PYTHON)
    with pytest.raises(PermissionDenied):
        w.workspace.mkdirs("/toplevel")
    with pytest.raises(PermissionDenied):
        w.workspace.delete(f"/Users/{name}", recursive=True)


async def test_seed_demo_is_idempotent(tmp_path: Path) -> None:
    from kiln.identity import Principal
    from kiln.store import Database, upgrade
    from kiln.store.models import User
    from kiln.workspace import list_objects, seed_demo
    from kiln.workspace.tree import load_contents

    url = f"sqlite+aiosqlite:///{tmp_path / 'demo.db'}"
    await asyncio.to_thread(upgrade, url)
    db = Database(url)
    try:
        async with db.session() as session:
            user = User(user_name="demo@example.com")
            session.add(user)
            await session.flush()
            me = Principal(user.id, user.user_name, is_admin=False, token_id="t")
            folder = await seed_demo(session, me)
            assert folder == "/Users/demo@example.com/Kiln Demo"
        async with db.session() as session:
            assert await seed_demo(session, me) == folder
            rows = await list_objects(session, me, folder)
            assert {(r.path.rsplit("/", 1)[1], r.language) for r in rows} == {
                ("Getting started", "PYTHON"),
                ("SQL basics", "SQL"),
            }
            python_row = next(r for r in rows if r.language == "PYTHON")
            await load_contents(session, [python_row])
            python = python_row.content or b""
            assert b"# MAGIC %md" in python and b"# COMMAND ----------" in python
    finally:
        await db.dispose()


# --- Bad input ------------------------------------------------------------------------------

TRAVERSALS = [
    "/Users/../etc",
    "/Shared/%2e%2e/x",
    "/Shared/%252e%252e/x",
    "/Shared/a\x00b",
    "/Shared\\evil",
    "//Shared",
    "/Shared//x",
    "Shared/relative",
    "",
]


@pytest.mark.parametrize("bad", TRAVERSALS)
def test_traversal_and_malformed_paths_are_refused(admin: httpx.Client, bad: str) -> None:
    assert_error(
        admin.get(f"{WS}/get-status", params={"path": bad}), 400, "INVALID_PARAMETER_VALUE"
    )
    assert_error(admin.get(f"{WS}/list", params={"path": bad}), 400, "INVALID_PARAMETER_VALUE")
    assert_error(admin.get(f"{WS}/export", params={"path": bad}), 400, "INVALID_PARAMETER_VALUE")
    assert_error(admin.post(f"{WS}/mkdirs", json={"path": bad}), 400, "INVALID_PARAMETER_VALUE")
    assert_error(admin.post(f"{WS}/delete", json={"path": bad}), 400, "INVALID_PARAMETER_VALUE")
    body = {"path": bad, "language": "PYTHON", "content": b64("print(1)")}
    assert_error(admin.post(f"{WS}/import", json=body), 400, "INVALID_PARAMETER_VALUE")


def test_multipart_traversal_is_refused(admin: httpx.Client) -> None:
    r = admin.post(
        f"{WS}/import",
        data={"path": "/Shared/../../etc/passwd", "format": "RAW"},
        files={"content": ("content", b"x")},
    )
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")


def test_unknown_paths_are_404(admin: httpx.Client, folder: str) -> None:
    missing = f"{folder}/nope"
    for r in (
        admin.get(f"{WS}/get-status", params={"path": missing}),
        admin.get(f"{WS}/list", params={"path": missing}),
        admin.get(f"{WS}/export", params={"path": missing}),
        admin.post(f"{WS}/delete", json={"path": missing}),
    ):
        body = assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST")
        assert missing in body["message"]


def test_import_into_missing_parent_is_404(sdk: WorkspaceClient, folder: str) -> None:
    with pytest.raises(NotFound, match="parent folder"):
        sdk.workspace.upload(f"{folder}/no/such/nb", b"print(1)", language=Language.PYTHON)


def test_collisions_are_409(admin: httpx.Client, sdk: WorkspaceClient, folder: str) -> None:
    sdk.workspace.upload(f"{folder}/nb", b"print(1)", language=Language.PYTHON)
    body = {"path": f"{folder}/nb", "language": "PYTHON", "content": b64("print(2)")}
    assert_error(admin.post(f"{WS}/import", json=body), 409, "RESOURCE_ALREADY_EXISTS")
    # mkdirs over (or through) a notebook.
    assert_error(
        admin.post(f"{WS}/mkdirs", json={"path": f"{folder}/nb"}), 409, "RESOURCE_ALREADY_EXISTS"
    )
    assert_error(
        admin.post(f"{WS}/mkdirs", json={"path": f"{folder}/nb/sub"}),
        409,
        "RESOURCE_ALREADY_EXISTS",
    )
    # A folder is never overwritten by an import.
    sdk.workspace.mkdirs(f"{folder}/dir")
    over = {"path": f"{folder}/dir", "language": "PYTHON", "content": b64("x"), "overwrite": True}
    assert_error(admin.post(f"{WS}/import", json=over), 409, "RESOURCE_ALREADY_EXISTS")
    with pytest.raises(ResourceAlreadyExists):
        sdk.workspace.upload(f"{folder}/nb", b"print(3)", language=Language.PYTHON)


def test_non_recursive_delete_of_non_empty_folder(admin: httpx.Client, folder: str) -> None:
    admin.post(f"{WS}/mkdirs", json={"path": f"{folder}/full/child"})
    r = admin.post(f"{WS}/delete", json={"path": f"{folder}/full", "recursive": False})
    assert_error(r, 400, "DIRECTORY_NOT_EMPTY")
    assert admin.get(f"{WS}/get-status", params={"path": f"{folder}/full/child"}).is_success


@pytest.mark.parametrize("protected", ["/", "/Users", "/Shared"])
def test_system_folders_cannot_be_deleted(admin: httpx.Client, protected: str) -> None:
    r = admin.post(f"{WS}/delete", json={"path": protected, "recursive": True})
    assert_error(r, 403, "DIRECTORY_PROTECTED")


@pytest.mark.parametrize(
    ("field", "value"),
    [("format", "WORD"), ("format", "source"), ("language", "COBOL"), ("language", "python")],
)
def test_bad_format_or_language_on_import(
    admin: httpx.Client, folder: str, field: str, value: str
) -> None:
    body = {"path": f"{folder}/x", "language": "PYTHON", "content": b64("x"), field: value}
    message = assert_error(admin.post(f"{WS}/import", json=body), 400, "INVALID_PARAMETER_VALUE")
    assert field in message["message"]


@pytest.mark.parametrize("fmt", ["PDF", "jupyter"])
def test_bad_export_format(admin: httpx.Client, folder: str, fmt: str) -> None:
    r = admin.get(f"{WS}/export", params={"path": folder, "format": fmt})
    assert "format" in assert_error(r, 400, "INVALID_PARAMETER_VALUE")["message"]


def test_unsupported_format_combinations(
    admin: httpx.Client, sdk: WorkspaceClient, folder: str
) -> None:
    sdk.workspace.upload(f"{folder}/f.txt", b"text", format=ImportFormat.RAW)
    for path, fmt in [
        (f"{folder}/f.txt", "JUPYTER"),
        (f"{folder}/f.txt", "HTML"),
        (folder, "HTML"),
        (folder, "JUPYTER"),
        (folder, "R_MARKDOWN"),
    ]:
        r = admin.get(f"{WS}/export", params={"path": path, "format": fmt})
        assert_error(r, 400, "INVALID_PARAMETER_VALUE")
    body = {"path": f"{folder}/rmd", "format": "R_MARKDOWN", "content": b64("x")}
    assert_error(admin.post(f"{WS}/import", json=body), 400, "INVALID_PARAMETER_VALUE")


def test_source_import_without_language(sdk: WorkspaceClient, folder: str) -> None:
    with pytest.raises(DatabricksError) as info:
        sdk.workspace.upload(f"{folder}/nolang", b"print(1)")
    assert info.value.error_code == "INVALID_PARAMETER_VALUE"
    assert "language" in str(info.value)


@pytest.mark.parametrize(
    ("fmt", "content"),
    [
        ("JUPYTER", b"{not json"),
        ("JUPYTER", b'{"nbformat": 4, "cells": "nope"}'),
        ("DBC", b"not a zip"),
        ("HTML", b"<html>no notebook here</html>"),
        ("SOURCE", b"\xff\xfe\xfa"),
    ],
)
def test_corrupt_content_is_refused(
    admin: httpx.Client, folder: str, fmt: str, content: bytes
) -> None:
    body = {"path": f"{folder}/bad", "format": fmt, "language": "PYTHON", "content": b64(content)}
    assert_error(admin.post(f"{WS}/import", json=body), 400, "INVALID_PARAMETER_VALUE")


def test_zip_slip_in_dbc_is_refused(admin: httpx.Client, folder: str) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("../escape.python", json.dumps({"language": "python", "commands": []}))
    body = {"path": f"{folder}/slip", "format": "DBC", "content": b64(buffer.getvalue())}
    assert_error(admin.post(f"{WS}/import", json=body), 400, "INVALID_PARAMETER_VALUE")


def test_invalid_base64_content(admin: httpx.Client, folder: str) -> None:
    body = {"path": f"{folder}/b", "language": "PYTHON", "content": "not*base64!"}
    message = assert_error(admin.post(f"{WS}/import", json=body), 400, "INVALID_PARAMETER_VALUE")
    assert "base64" in message["message"]


def test_oversized_import_is_refused(
    admin: httpx.Client, sdk: WorkspaceClient, folder: str
) -> None:
    limit = 10 * 1024 * 1024
    big = b"#" * (limit + 1)
    # Multipart (the SDK's upload) and JSON base64 both hit the 10 MB content limit...
    with pytest.raises(DatabricksError) as info:
        sdk.workspace.upload(f"{folder}/big", big, format=ImportFormat.RAW)
    assert info.value.error_code == "MAX_NOTEBOOK_SIZE_EXCEEDED"
    body = {"path": f"{folder}/big", "format": "RAW", "content": b64(big)}
    assert_error(admin.post(f"{WS}/import", json=body), 400, "MAX_NOTEBOOK_SIZE_EXCEEDED")
    # ...and a body past the request limit is refused before it is read.
    huge = {"path": f"{folder}/huge", "format": "RAW", "content": "A" * (17 * 1024 * 1024)}
    assert_error(admin.post(f"{WS}/import", json=huge), 413, "MAX_REQUEST_SIZE_EXCEEDED")
    with pytest.raises(NotFound):
        sdk.workspace.get_status(f"{folder}/big")


@pytest.mark.parametrize("endpoint", ["import", "mkdirs", "delete"])
def test_malformed_json(admin: httpx.Client, endpoint: str) -> None:
    r = admin.post(
        f"{WS}/{endpoint}", content=b'{"path": ', headers={"Content-Type": "application/json"}
    )
    assert_error(r, 400, "MALFORMED_REQUEST")


@pytest.mark.parametrize(
    ("method", "endpoint", "payload"),
    [
        ("POST", "import", {"content": "eA==", "language": "PYTHON"}),
        ("POST", "mkdirs", {}),
        ("POST", "delete", {"recursive": True}),
        ("GET", "get-status", None),
        ("GET", "list", None),
        ("GET", "export", None),
    ],
)
def test_missing_path_names_the_field(
    admin: httpx.Client, method: str, endpoint: str, payload: dict[str, Any] | None
) -> None:
    r = admin.request(method, f"{WS}/{endpoint}", json=payload)
    message = assert_error(r, 400, "INVALID_PARAMETER_VALUE")["message"]
    assert "path" in message


def test_multipart_missing_path_names_the_field(admin: httpx.Client) -> None:
    r = admin.post(f"{WS}/import", data={"format": "RAW"}, files={"content": ("c", b"x")})
    assert "path" in assert_error(r, 400, "INVALID_PARAMETER_VALUE")["message"]


def test_json_body_must_be_an_object(admin: httpx.Client) -> None:
    r = admin.post(f"{WS}/import", content=b"[1, 2]", headers={"Content-Type": "application/json"})
    assert_error(r, 400, "MALFORMED_REQUEST")
