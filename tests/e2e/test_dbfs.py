"""DBFS API 2.0 against the live server: databricks-sdk, the legacy CLI's client and raw HTTP."""

from __future__ import annotations

import base64
import gc
import io
import os
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from databricks.sdk import WorkspaceClient
from databricks_cli.dbfs.api import DbfsApi

from support import Server, assert_error

MB = 1024 * 1024


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture
def base(admin: httpx.Client) -> str:
    """A fresh DBFS folder for one test."""
    path = f"/tests-dbfs/{uuid.uuid4().hex[:12]}"
    r = admin.post("/api/2.0/dbfs/mkdirs", json={"path": path})
    assert r.status_code == 200, r.text
    return path


def _put(admin: httpx.Client, path: str, data: bytes, overwrite: bool = False) -> httpx.Response:
    return admin.post(
        "/api/2.0/dbfs/put",
        json={"path": path, "contents": _b64(data), "overwrite": overwrite},
    )


def _read(admin: httpx.Client, path: str, **params: int) -> httpx.Response:
    return admin.get("/api/2.0/dbfs/read", params={"path": path, **params})


# -- databricks-sdk ---------------------------------------------------------------------------


def test_sdk_upload_download_5mb_is_byte_equal(sdk: WorkspaceClient, base: str) -> None:
    data = os.urandom(5 * MB + 123)
    sdk.dbfs.upload(f"dbfs:{base}/five.bin", io.BytesIO(data))
    with sdk.dbfs.download(f"{base}/five.bin") as f:
        assert f.read() == data
    status = sdk.dbfs.get_status(f"{base}/five.bin")
    assert status.file_size == len(data) and not status.is_dir


def test_sdk_list_mkdirs_move_delete(sdk: WorkspaceClient, base: str) -> None:
    sdk.dbfs.mkdirs(f"{base}/d/e")
    sdk.dbfs.upload(f"{base}/d/f.txt", io.BytesIO(b"hello"))
    listed = {(i.path, i.is_dir, i.file_size) for i in sdk.dbfs.list(f"{base}/d")}
    assert listed == {(f"{base}/d/e", True, 0), (f"{base}/d/f.txt", False, 5)}
    sdk.dbfs.move(f"{base}/d", f"{base}/moved")
    assert not sdk.dbfs.exists(f"{base}/d")
    with sdk.dbfs.download(f"{base}/moved/f.txt") as f:
        assert f.read() == b"hello"
    sdk.dbfs.delete(f"{base}/moved", recursive=True)
    assert not sdk.dbfs.exists(f"{base}/moved")


def test_sdk_upload_without_overwrite_refuses_existing(sdk: WorkspaceClient, base: str) -> None:
    from databricks.sdk.errors import ResourceAlreadyExists

    sdk.dbfs.upload(f"{base}/x", io.BytesIO(b"1"))
    with pytest.raises(ResourceAlreadyExists):
        sdk.dbfs.upload(f"{base}/x", io.BytesIO(b"2"))
    sdk.dbfs.upload(f"{base}/x", io.BytesIO(b"3"), overwrite=True)
    with sdk.dbfs.download(f"{base}/x") as f:
        assert f.read() == b"3"


# -- legacy databricks-cli 0.18 ---------------------------------------------------------------


def _cli_dbfs(server: Server) -> DbfsApi:
    from databricks_cli.sdk.api_client import ApiClient

    client = ApiClient(host=server.url, token=server.token)
    client.url = f"{server.url}/api/"  # the CLI drops the port; aim it at the test server
    return DbfsApi(client)


# databricks-cli 0.18's DbfsService.put opens the local file and never closes it.
CLI_LEAKS_FILE = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


@CLI_LEAKS_FILE
def test_cli_fs_cp_sends_one_multipart_put(server: Server, base: str, tmp_path: Path) -> None:
    from databricks_cli.dbfs.dbfs_path import DbfsPath

    api = _cli_dbfs(server)
    src = tmp_path / "local.bin"
    data = os.urandom(3 * MB + 7)
    src.write_bytes(data)
    api.put_file(str(src), DbfsPath(f"dbfs:{base}/cli.bin"), overwrite=False)
    back = tmp_path / "back.bin"
    api.get_file(DbfsPath(f"dbfs:{base}/cli.bin"), str(back), overwrite=False)
    assert back.read_bytes() == data
    assert [f.dbfs_path.absolute_path for f in api.list_files(DbfsPath(f"dbfs:{base}"))] == [
        f"dbfs:{base}/cli.bin"
    ]


@CLI_LEAKS_FILE
def test_cli_put_refuses_existing_without_overwrite(
    server: Server, base: str, tmp_path: Path
) -> None:
    import requests
    from databricks_cli.dbfs.dbfs_path import DbfsPath

    api = _cli_dbfs(server)
    src = tmp_path / "f.txt"
    src.write_bytes(b"one")
    api.put_file(str(src), DbfsPath(f"dbfs:{base}/f.txt"), overwrite=False)
    with pytest.raises(requests.HTTPError) as info:
        api.put_file(str(src), DbfsPath(f"dbfs:{base}/f.txt"), overwrite=False)
    assert info.value.response.status_code == 409
    assert info.value.response.json()["error_code"] == "RESOURCE_ALREADY_EXISTS"
    src.write_bytes(b"two")
    api.put_file(str(src), DbfsPath(f"dbfs:{base}/f.txt"), overwrite=True)
    assert base64.b64decode(api.client.read(f"{base}/f.txt")["data"]) == b"two"
    del info  # its traceback holds the file the CLI leaked: let it go inside this test
    gc.collect()


def test_multipart_put_with_fields_after_the_file(admin: httpx.Client, base: str) -> None:
    boundary = "kilnboundary"
    data = os.urandom(2 * MB)
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="x"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + data
        + (
            f'\r\n--{boundary}\r\nContent-Disposition: form-data; name="path"\r\n\r\n'
            f"dbfs:{base}/late.bin\r\n--{boundary}--\r\n"
        ).encode()
    )
    r = admin.post(
        "/api/2.0/dbfs/put",
        content=body,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert r.status_code == 200, r.text
    assert admin.get("/api/2.0/dbfs/get-status", params={"path": f"{base}/late.bin"}).json()[
        "file_size"
    ] == len(data)


def test_multipart_put_truncated_or_without_path_is_refused(admin: httpx.Client, base: str) -> None:
    headers = {"Content-Type": "multipart/form-data; boundary=b"}
    head = b'--b\r\nContent-Disposition: form-data; name="file"; filename="x"\r\n\r\nabc'
    r = admin.post("/api/2.0/dbfs/put", content=head, headers=headers)
    assert_error(r, 400, "MALFORMED_REQUEST")
    r = admin.post("/api/2.0/dbfs/put", content=head + b"\r\n--b--\r\n", headers=headers)
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")
    r = admin.post(
        "/api/2.0/dbfs/put", content=b"--b--\r\n", headers={"Content-Type": "multipart/form-data"}
    )
    assert_error(r, 400, "MALFORMED_REQUEST")


# -- put / read -------------------------------------------------------------------------------


def test_inline_put_then_read_with_offset_and_length(admin: httpx.Client, base: str) -> None:
    data = bytes(range(256)) * 40
    assert _put(admin, f"dbfs:{base}/r.bin", data).status_code == 200
    body = _read(admin, f"{base}/r.bin", offset=100, length=50).json()
    assert body["bytes_read"] == 50 and base64.b64decode(body["data"]) == data[100:150]
    tail = _read(admin, f"{base}/r.bin", offset=len(data) - 10, length=1000).json()
    assert tail["bytes_read"] == 10 and base64.b64decode(tail["data"]) == data[-10:]
    past = _read(admin, f"{base}/r.bin", offset=len(data) + 5, length=10).json()
    assert past == {"bytes_read": 0, "data": ""}
    default = _read(admin, f"{base}/r.bin").json()
    assert base64.b64decode(default["data"]) == data


def test_sequential_reads_see_a_file_replaced_between_them(admin: httpx.Client, base: str) -> None:
    # Kiln prepares the next block after each read: it must never serve the old file's bytes.
    _put(admin, f"{base}/v", b"a" * 3000)
    assert base64.b64decode(_read(admin, f"{base}/v", length=1000).json()["data"]) == b"a" * 1000
    _put(admin, f"{base}/v", b"b" * 2500, overwrite=True)
    second = _read(admin, f"{base}/v", offset=1000, length=1000).json()
    assert base64.b64decode(second["data"]) == b"b" * 1000
    third = _read(admin, f"{base}/v", offset=2000, length=1000).json()
    assert third["bytes_read"] == 500


def test_inline_put_of_exactly_1mb_is_allowed(admin: httpx.Client, base: str) -> None:
    assert _put(admin, f"{base}/one.bin", os.urandom(MB)).status_code == 200
    assert _read(admin, f"{base}/one.bin", length=MB).json()["bytes_read"] == MB


def test_inline_put_over_1mb_is_max_block_size_exceeded(admin: httpx.Client, base: str) -> None:
    r = _put(admin, f"{base}/big.bin", os.urandom(MB + 1))
    assert_error(r, 400, "MAX_BLOCK_SIZE_EXCEEDED")
    r = _put(admin, f"{base}/huge.bin", os.urandom(4 * MB))
    assert_error(r, 400, "MAX_BLOCK_SIZE_EXCEEDED")
    assert_error(
        admin.get("/api/2.0/dbfs/get-status", params={"path": f"{base}/big.bin"}),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )


def test_read_over_1mb_is_max_read_size_exceeded(admin: httpx.Client, base: str) -> None:
    _put(admin, f"{base}/a", b"abc")
    assert_error(_read(admin, f"{base}/a", length=MB + 1), 400, "MAX_READ_SIZE_EXCEEDED")


@pytest.mark.parametrize("params", [{"offset": -1}, {"length": -1}, {"offset": "x"}])
def test_read_with_bad_offset_or_length(
    admin: httpx.Client, base: str, params: dict[str, object]
) -> None:
    _put(admin, f"{base}/a", b"abc")
    r = admin.get("/api/2.0/dbfs/read", params={"path": f"{base}/a", **params})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")


def test_read_of_a_directory_or_missing_file(admin: httpx.Client, base: str) -> None:
    assert_error(_read(admin, base), 400, "INVALID_PARAMETER_VALUE")
    assert_error(_read(admin, f"{base}/nope"), 404, "RESOURCE_DOES_NOT_EXIST")


def test_put_existing_without_overwrite_is_409(admin: httpx.Client, base: str) -> None:
    assert _put(admin, f"{base}/f", b"1").status_code == 200
    assert_error(_put(admin, f"{base}/f", b"2"), 409, "RESOURCE_ALREADY_EXISTS")
    assert_error(_put(admin, base, b"2", overwrite=True), 409, "RESOURCE_ALREADY_EXISTS")
    assert _put(admin, f"{base}/f", b"3", overwrite=True).status_code == 200
    assert base64.b64decode(_read(admin, f"{base}/f").json()["data"]) == b"3"


def test_put_under_a_file_is_409(admin: httpx.Client, base: str) -> None:
    _put(admin, f"{base}/f", b"1")
    assert_error(_put(admin, f"{base}/f/child", b"2"), 409, "RESOURCE_ALREADY_EXISTS")


def test_put_creates_parent_directories(admin: httpx.Client, base: str) -> None:
    assert _put(admin, f"{base}/p/q/r.txt", b"x").status_code == 200
    status = admin.get("/api/2.0/dbfs/get-status", params={"path": f"{base}/p/q"}).json()
    assert status["is_dir"] is True


def test_bad_base64_is_invalid(admin: httpx.Client, base: str) -> None:
    r = admin.post("/api/2.0/dbfs/put", json={"path": f"{base}/b", "contents": "not base64!"})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")


# -- streaming handles ------------------------------------------------------------------------


def test_create_add_block_close(admin: httpx.Client, base: str) -> None:
    handle = admin.post("/api/2.0/dbfs/create", json={"path": f"{base}/s.bin"}).json()["handle"]
    blocks = [os.urandom(MB), os.urandom(1000), b""]
    for block in blocks:
        r = admin.post("/api/2.0/dbfs/add-block", json={"handle": handle, "data": _b64(block)})
        assert r.status_code == 200, r.text
    # Nothing is visible before close.
    assert_error(
        admin.get("/api/2.0/dbfs/get-status", params={"path": f"{base}/s.bin"}),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )
    assert admin.post("/api/2.0/dbfs/close", json={"handle": handle}).status_code == 200
    got = _read(admin, f"{base}/s.bin", length=MB).json()["data"]
    got2 = _read(admin, f"{base}/s.bin", offset=MB, length=MB).json()["data"]
    assert base64.b64decode(got) + base64.b64decode(got2) == b"".join(blocks)
    # A closed handle is gone.
    r = admin.post("/api/2.0/dbfs/add-block", json={"handle": handle, "data": ""})
    assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST")
    assert_error(
        admin.post("/api/2.0/dbfs/close", json={"handle": handle}), 404, "RESOURCE_DOES_NOT_EXIST"
    )


def test_create_existing_without_overwrite_is_409(admin: httpx.Client, base: str) -> None:
    _put(admin, f"{base}/e", b"1")
    r = admin.post("/api/2.0/dbfs/create", json={"path": f"{base}/e"})
    assert_error(r, 409, "RESOURCE_ALREADY_EXISTS")
    r = admin.post("/api/2.0/dbfs/create", json={"path": f"{base}/e", "overwrite": True})
    assert r.status_code == 200 and isinstance(r.json()["handle"], int)


@pytest.mark.parametrize("handle", [987654321, -1, 0])
def test_unknown_handle_is_404(admin: httpx.Client, handle: int) -> None:
    r = admin.post("/api/2.0/dbfs/add-block", json={"handle": handle, "data": ""})
    assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST")
    assert_error(
        admin.post("/api/2.0/dbfs/close", json={"handle": handle}), 404, "RESOURCE_DOES_NOT_EXIST"
    )


def test_another_users_handle_does_not_exist_for_them(
    server: Server, admin: httpx.Client, make_user: Callable[..., tuple[str, str]], base: str
) -> None:
    handle = admin.post("/api/2.0/dbfs/create", json={"path": f"{base}/mine"}).json()["handle"]
    _, token = make_user("dbfs")
    with server.client(token) as other:
        r = other.post("/api/2.0/dbfs/add-block", json={"handle": handle, "data": _b64(b"x")})
        assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST")
        assert_error(
            other.post("/api/2.0/dbfs/close", json={"handle": handle}),
            404,
            "RESOURCE_DOES_NOT_EXIST",
        )
    assert admin.post("/api/2.0/dbfs/close", json={"handle": handle}).status_code == 200
    assert (
        admin.get("/api/2.0/dbfs/get-status", params={"path": f"{base}/mine"}).json()["file_size"]
        == 0
    )


def test_add_block_over_1mb_is_max_block_size_exceeded(admin: httpx.Client, base: str) -> None:
    handle = admin.post("/api/2.0/dbfs/create", json={"path": f"{base}/m"}).json()["handle"]
    r = admin.post(
        "/api/2.0/dbfs/add-block", json={"handle": handle, "data": _b64(os.urandom(MB + 1))}
    )
    assert_error(r, 400, "MAX_BLOCK_SIZE_EXCEEDED")


# -- list / status / mkdirs / delete / move -------------------------------------------------


def test_list_and_get_status(admin: httpx.Client, base: str) -> None:
    _put(admin, f"{base}/b.txt", b"bb")
    admin.post("/api/2.0/dbfs/mkdirs", json={"path": f"dbfs:{base}/a"})
    files = admin.get("/api/2.0/dbfs/list", params={"path": f"dbfs:{base}"}).json()["files"]
    assert [(f["path"], f["is_dir"], f["file_size"]) for f in files] == [
        (f"{base}/a", True, 0),
        (f"{base}/b.txt", False, 2),
    ]
    assert all(
        isinstance(f["modification_time"], int) and f["modification_time"] > 0 for f in files
    )
    # Listing a file lists the file itself.
    one = admin.get("/api/2.0/dbfs/list", params={"path": f"{base}/b.txt"}).json()["files"]
    assert [f["path"] for f in one] == [f"{base}/b.txt"]
    root = admin.get("/api/2.0/dbfs/list", params={"path": "/"}).json()["files"]
    assert ".kiln-staging" not in {f["path"].rsplit("/", 1)[-1] for f in root}


def test_unknown_path_is_404(admin: httpx.Client, base: str) -> None:
    for endpoint in ("get-status", "list", "read"):
        r = admin.get(f"/api/2.0/dbfs/{endpoint}", params={"path": f"{base}/missing"})
        assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST")


def test_mkdirs_is_idempotent_and_refuses_files_in_the_way(admin: httpx.Client, base: str) -> None:
    for _ in range(2):
        assert admin.post("/api/2.0/dbfs/mkdirs", json={"path": f"{base}/x/y"}).status_code == 200
    _put(admin, f"{base}/file", b"1")
    for path in (f"{base}/file", f"{base}/file/sub"):
        r = admin.post("/api/2.0/dbfs/mkdirs", json={"path": path})
        assert_error(r, 409, "RESOURCE_ALREADY_EXISTS")


def test_delete_semantics(admin: httpx.Client, base: str) -> None:
    _put(admin, f"{base}/d/f", b"1")
    r = admin.post("/api/2.0/dbfs/delete", json={"path": f"{base}/d"})
    assert_error(r, 400, "IO_ERROR")
    r = admin.post("/api/2.0/dbfs/delete", json={"path": f"{base}/d", "recursive": True})
    assert r.status_code == 200
    admin.post("/api/2.0/dbfs/mkdirs", json={"path": f"{base}/empty"})
    assert admin.post("/api/2.0/dbfs/delete", json={"path": f"{base}/empty"}).status_code == 200
    # Deleting what is not there succeeds, as on Databricks.
    assert admin.post("/api/2.0/dbfs/delete", json={"path": f"{base}/never"}).status_code == 200
    r = admin.post("/api/2.0/dbfs/delete", json={"path": "/", "recursive": True})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")


def test_move_semantics(admin: httpx.Client, base: str) -> None:
    _put(admin, f"{base}/src/f", b"1")
    _put(admin, f"{base}/other", b"2")
    move = "/api/2.0/dbfs/move"
    r = admin.post(move, json={"source_path": f"{base}/src", "destination_path": f"{base}/other"})
    assert_error(r, 409, "RESOURCE_ALREADY_EXISTS")
    r = admin.post(move, json={"source_path": f"{base}/nope", "destination_path": f"{base}/n2"})
    assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST")
    r = admin.post(move, json={"source_path": f"{base}/src", "destination_path": f"{base}/src/in"})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")
    r = admin.post(
        move, json={"source_path": f"dbfs:{base}/src", "destination_path": f"{base}/new/dst"}
    )
    assert r.status_code == 200, r.text
    assert base64.b64decode(_read(admin, f"{base}/new/dst/f").json()["data"]) == b"1"


# -- bad input ---------------------------------------------------------------------------------

TRAVERSALS = [
    "/tests-dbfs/../../etc/passwd",
    "dbfs:/../etc/passwd",
    "/a/%2e%2e/%2e%2e/etc",
    "/a/%2E%2E/b",
    "/a/%252e%252e/b",
    "/a/%25252e%25252e/b",
    "/a/..%2f..%2fetc",
    "/a\x00b",
    "/a/%00b",
    "/a\\..\\b",
    "/a//b",
    "//etc/passwd",
    "relative/path",
    "",
    "s3://bucket/key",
    "/.kiln-staging",
    "/.kiln-staging/x",
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_traversal_and_malformed_paths_are_400(admin: httpx.Client, path: str) -> None:
    assert_error(
        admin.get("/api/2.0/dbfs/get-status", params={"path": path}), 400, "INVALID_PARAMETER_VALUE"
    )
    assert_error(_put(admin, path, b"x", overwrite=True), 400, "INVALID_PARAMETER_VALUE")
    r = admin.post("/api/2.0/dbfs/create", json={"path": path, "overwrite": True})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")
    r = admin.post("/api/2.0/dbfs/mkdirs", json={"path": path})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")
    r = admin.post("/api/2.0/dbfs/move", json={"source_path": "/x", "destination_path": path})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")


def test_symlink_out_of_the_root_is_refused(
    server: Server, admin: httpx.Client, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    link = server.data_dir / "dbfs" / f"link-{uuid.uuid4().hex[:8]}"
    link.symlink_to(outside)
    request.addfinalizer(link.unlink)
    name = link.name
    r = admin.get("/api/2.0/dbfs/read", params={"path": f"/{name}/secret.txt"})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")
    assert_error(_put(admin, f"/{name}/planted.txt", b"x"), 400, "INVALID_PARAMETER_VALUE")
    assert not (outside / "planted.txt").exists()
    root = admin.get("/api/2.0/dbfs/list", params={"path": "/"}).json()["files"]
    assert f"/{name}" not in {f["path"] for f in root}
    assert admin.post("/api/2.0/dbfs/delete", json={"path": f"/{name}"}).status_code == 400
    assert (outside / "secret.txt").exists()


@pytest.mark.parametrize(
    ("endpoint", "body"),
    [
        ("put", b'{"path": '),
        ("create", b"{not json"),
        ("add-block", b'{"handle": 1, "data": "'),
        ("close", b"[1, 2"),
        ("mkdirs", b"nope"),
        ("delete", b'{"path": "/x",}'),
        ("move", b"{"),
    ],
)
def test_malformed_json_is_400(admin: httpx.Client, endpoint: str, body: bytes) -> None:
    r = admin.post(
        f"/api/2.0/dbfs/{endpoint}", content=body, headers={"Content-Type": "application/json"}
    )
    assert_error(r, 400, "MALFORMED_REQUEST")


@pytest.mark.parametrize(
    ("endpoint", "body"),
    [
        ("put", {"contents": ""}),
        ("create", {"overwrite": True}),
        ("add-block", {"data": ""}),
        ("add-block", {"handle": 1}),
        ("close", {}),
        ("mkdirs", {}),
        ("delete", {"recursive": True}),
        ("move", {"source_path": "/a"}),
        ("put", {"path": 5}),
    ],
)
def test_missing_or_mistyped_fields_are_400(
    admin: httpx.Client, endpoint: str, body: dict[str, object]
) -> None:
    r = admin.post(f"/api/2.0/dbfs/{endpoint}", json=body)
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")


@pytest.mark.parametrize("endpoint", ["get-status", "list", "read"])
def test_missing_path_query_is_400(admin: httpx.Client, endpoint: str) -> None:
    assert_error(admin.get(f"/api/2.0/dbfs/{endpoint}"), 400, "INVALID_PARAMETER_VALUE")


def test_legacy_text_json_content_type_is_accepted(admin: httpx.Client, base: str) -> None:
    r = admin.post(
        "/api/2.0/dbfs/put",
        content=f'{{"path": "{base}/t", "contents": "{_b64(b"legacy")}"}}',
        headers={"Content-Type": "text/json"},
    )
    assert r.status_code == 200, r.text
    r = admin.post(
        "/api/2.0/dbfs/mkdirs",
        content=f'{{"path": "{base}/td"}}',
        headers={"Content-Type": "text/json"},
    )
    assert r.status_code == 200, r.text
