"""Files API against the live server: databricks-sdk (`w.files`), its multipart handshake,
Range reads, directories, and bad input sent as raw HTTP."""

from __future__ import annotations

import http.client
import io
import os
import time
import uuid
from collections.abc import Callable
from email.utils import formatdate
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.mixins.files import FilesExt

from support import Server, assert_error

MB = 1024 * 1024
FILES = "/api/2.0/fs/files"
DIRS = "/api/2.0/fs/directories"


@pytest.fixture
def base() -> str:
    """A fresh Files API folder (a volume-like path) for one test."""
    return f"/Volumes/main/default/tests/{uuid.uuid4().hex[:12]}"


def _upload(admin: httpx.Client, path: str, data: bytes, **params: str) -> httpx.Response:
    return admin.put(FILES + path, content=data, params=params)


# -- databricks-sdk ---------------------------------------------------------------------------


def test_sdk_60mb_upload_goes_through_multipart_and_round_trips(
    sdk: WorkspaceClient, base: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    completed: list[int] = []
    single_shots: list[str] = []
    complete = FilesExt._complete_multipart_upload
    single = FilesExt._single_thread_single_shot_upload

    def spy_complete(self: FilesExt, ctx: Any, etags: dict[int, str], token: str) -> None:
        completed.append(len(etags))
        complete(self, ctx, etags, token)

    def spy_single(self: FilesExt, ctx: Any, contents: Any) -> None:
        single_shots.append(ctx.target_path)
        single(self, ctx, contents)

    monkeypatch.setattr(FilesExt, "_complete_multipart_upload", spy_complete)
    monkeypatch.setattr(FilesExt, "_single_thread_single_shot_upload", spy_single)
    data = os.urandom(60 * MB + 5)
    sdk.files.upload(f"{base}/big.bin", io.BytesIO(data))
    assert completed and completed[0] >= 2 and not single_shots  # no silent fallback
    assert sdk.files.download(f"{base}/big.bin").contents.read() == data
    meta = sdk.files.get_metadata(f"{base}/big.bin")
    assert meta.content_length == len(data) and meta.content_type == "application/octet-stream"


def test_sdk_parallel_download_to_file(sdk: WorkspaceClient, base: str, tmp_path: Any) -> None:
    data = os.urandom(51 * MB)
    sdk.files.upload(f"{base}/p.bin", io.BytesIO(data), use_parallel=False)
    dest = tmp_path / "p.bin"
    sdk.files.download_to(f"{base}/p.bin", str(dest), use_parallel=True, parallelism=4)
    assert dest.read_bytes() == data


def test_sdk_small_files_and_directories(sdk: WorkspaceClient, base: str) -> None:
    from databricks.sdk.errors import NotFound

    sdk.files.create_directory(f"{base}/d/e")
    sdk.files.upload(f"{base}/d/a.txt", io.BytesIO(b"hello"))
    assert sdk.files.download(f"{base}/d/a.txt").contents.read() == b"hello"
    entries = {
        (e.name, e.is_directory, e.file_size)
        for e in sdk.files.list_directory_contents(f"{base}/d")
    }
    assert entries == {("a.txt", False, 5), ("e", True, None)}
    sdk.files.get_directory_metadata(f"{base}/d")
    sdk.files.delete(f"{base}/d/a.txt")
    with pytest.raises(NotFound):
        sdk.files.get_metadata(f"{base}/d/a.txt")
    sdk.files.delete_directory(f"{base}/d/e")
    sdk.files.delete_directory(f"{base}/d")
    with pytest.raises(NotFound):
        sdk.files.get_directory_metadata(f"{base}/d")


def test_sdk_upload_without_overwrite_refuses_existing(sdk: WorkspaceClient, base: str) -> None:
    from databricks.sdk.errors import ResourceConflict

    sdk.files.upload(f"{base}/x", io.BytesIO(b"1"))
    with pytest.raises(ResourceConflict):
        sdk.files.upload(f"{base}/x", io.BytesIO(b"2"), overwrite=False)
    sdk.files.upload(f"{base}/x", io.BytesIO(b"3"))  # overwrite defaults to true
    assert sdk.files.download(f"{base}/x").contents.read() == b"3"


def test_files_and_dbfs_share_one_root(
    sdk: WorkspaceClient, admin: httpx.Client, base: str
) -> None:
    sdk.files.upload(f"{base}/shared.txt", io.BytesIO(b"both"))
    status = admin.get("/api/2.0/dbfs/get-status", params={"path": f"dbfs:{base}/shared.txt"})
    assert status.json()["file_size"] == 4


# -- raw HTTP: downloads ----------------------------------------------------------------------


def test_get_head_headers_and_range_reads(admin: httpx.Client, base: str) -> None:
    data = bytes(range(256)) * 4
    assert _upload(admin, f"{base}/r.bin", data).status_code == 204
    full = admin.get(FILES + f"{base}/r.bin")
    assert full.status_code == 200 and full.content == data
    assert full.headers["content-length"] == str(len(data))
    assert full.headers["content-type"] == "application/octet-stream"
    assert full.headers["last-modified"].endswith("GMT")
    head = admin.head(FILES + f"{base}/r.bin")
    assert head.status_code == 200 and head.headers["content-length"] == str(len(data))
    assert head.headers["last-modified"] == full.headers["last-modified"]
    cases = {
        "bytes=0-9": data[:10],
        "bytes=1000-": data[1000:],
        "bytes=-5": data[-5:],
        "bytes=1020-5000": data[1020:],
    }
    for spec, expected in cases.items():
        r = admin.get(FILES + f"{base}/r.bin", headers={"Range": spec})
        assert r.status_code == 206, spec
        assert r.content == expected, spec
        first = len(data) - len(expected) if spec != "bytes=0-9" else 0
        assert (
            r.headers["content-range"] == f"bytes {first}-{first + len(expected) - 1}/{len(data)}"
        )
    # Several ranges at once are answered with the whole file, as RFC 9110 allows.
    r = admin.get(FILES + f"{base}/r.bin", headers={"Range": "bytes=0-1,5-6"})
    assert r.status_code == 200 and r.content == data


@pytest.mark.parametrize("spec", ["bytes=5000-", "bytes=10-2", "bytes=abc-", "bytes=-0"])
def test_unsatisfiable_range_is_416(admin: httpx.Client, base: str, spec: str) -> None:
    _upload(admin, f"{base}/r.bin", b"0123456789")
    r = admin.get(FILES + f"{base}/r.bin", headers={"Range": spec})
    assert r.status_code == 416, spec
    assert r.headers["content-range"] == "bytes */10"
    assert r.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_if_unmodified_since(admin: httpx.Client, base: str) -> None:
    _upload(admin, f"{base}/u", b"abc")
    past = formatdate(time.time() - 3600, usegmt=True)
    r = admin.get(FILES + f"{base}/u", headers={"If-Unmodified-Since": past})
    assert_error(r, 412, "FAILED_PRECONDITION")
    last = admin.head(FILES + f"{base}/u").headers["last-modified"]
    r = admin.get(FILES + f"{base}/u", headers={"If-Unmodified-Since": last, "Range": "bytes=1-"})
    assert r.status_code == 206 and r.content == b"bc"


def test_missing_file_and_directory_as_file_are_404(admin: httpx.Client, base: str) -> None:
    assert_error(admin.get(FILES + f"{base}/none"), 404, "RESOURCE_DOES_NOT_EXIST")
    assert admin.head(FILES + f"{base}/none").status_code == 404
    admin.put(DIRS + f"{base}/dir")
    assert_error(admin.get(FILES + f"{base}/dir"), 404, "RESOURCE_DOES_NOT_EXIST")
    assert_error(admin.delete(FILES + f"{base}/dir"), 404, "RESOURCE_DOES_NOT_EXIST")
    assert_error(admin.delete(FILES + f"{base}/none"), 404, "RESOURCE_DOES_NOT_EXIST")


def test_create_download_url_points_back_at_kiln(
    server: Server, admin: httpx.Client, base: str
) -> None:
    _upload(admin, f"{base}/dl.txt", b"payload")
    r = admin.post("/api/2.0/fs/create-download-url", params={"path": f"{base}/dl.txt"})
    assert r.status_code == 200, r.text
    body = r.json()
    headers = {h["name"]: h["value"] for h in body["headers"]}
    assert body["url"].startswith(server.url)
    assert httpx.get(body["url"], headers=headers).content == b"payload"
    assert httpx.get(body["url"]).status_code == 401  # the URL alone grants nothing
    r = admin.post("/api/2.0/fs/create-download-url", json={"path": f"{base}/dl.txt"})
    assert r.status_code == 200
    r = admin.post("/api/2.0/fs/create-download-url", params={"path": f"{base}/none"})
    assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST")


# -- raw HTTP: uploads ------------------------------------------------------------------------


def test_put_overwrite_semantics(admin: httpx.Client, base: str) -> None:
    assert _upload(admin, f"{base}/o", b"1").status_code == 204
    assert_error(
        _upload(admin, f"{base}/o", b"2", overwrite="false"), 409, "RESOURCE_ALREADY_EXISTS"
    )
    assert _upload(admin, f"{base}/o", b"3", overwrite="true").status_code == 204
    assert admin.get(FILES + f"{base}/o").content == b"3"
    admin.put(DIRS + f"{base}/adir")
    assert_error(_upload(admin, f"{base}/adir", b"x"), 409, "RESOURCE_ALREADY_EXISTS")
    assert_error(_upload(admin, f"{base}/o/under", b"x"), 409, "RESOURCE_ALREADY_EXISTS")


def test_put_streams_an_empty_and_a_large_body(admin: httpx.Client, base: str) -> None:
    assert _upload(admin, f"{base}/empty", b"").status_code == 204
    assert admin.head(FILES + f"{base}/empty").headers["content-length"] == "0"
    data = os.urandom(20 * MB + 3)

    def chunks() -> Any:
        for i in range(0, len(data), 300_000):
            yield data[i : i + 300_000]

    r = admin.put(FILES + f"{base}/chunked", content=chunks())  # chunked transfer encoding
    assert r.status_code == 204, r.text
    assert admin.get(FILES + f"{base}/chunked").content == data


def _initiate(client: httpx.Client, path: str, **params: str) -> str:
    r = client.post(FILES + path, params={"action": "initiate-upload", **params})
    assert r.status_code == 200, r.text
    token: str = r.json()["multipart_upload"]["session_token"]
    return token


def _part_url(
    client: httpx.Client, path: str, token: str, number: int
) -> tuple[str, dict[str, str]]:
    r = client.post(
        "/api/2.0/fs/create-upload-part-urls",
        json={"path": path, "session_token": token, "start_part_number": number, "count": 1},
    )
    assert r.status_code == 200, r.text
    (info,) = r.json()["upload_part_urls"]
    assert info["part_number"] == number
    return info["url"], {h["name"]: h["value"] for h in info["headers"]}


def test_multipart_handshake_by_hand(admin: httpx.Client, base: str) -> None:
    path = f"{base}/mp.bin"
    token = _initiate(admin, path)
    parts = [os.urandom(MB), os.urandom(MB), b"tail"]
    etags = {}
    for number in (3, 1, 2):  # any order
        url, headers = _part_url(admin, path, token, number)
        r = httpx.put(url, content=parts[number - 1], headers=headers)
        assert r.status_code == 200, r.text
        etags[number] = r.headers["etag"]
    # Nothing is visible until complete.
    assert admin.head(FILES + path).status_code == 404
    body = {"parts": [{"part_number": n, "etag": etags[n]} for n in (1, 2, 3)]}
    r = admin.post(
        FILES + path,
        params={"action": "complete-upload", "upload_type": "multipart", "session_token": token},
        json=body,
    )
    assert r.status_code == 200, r.text
    assert admin.get(FILES + path).content == b"".join(parts)
    # The session is over.
    r = admin.post(
        FILES + path, params={"action": "complete-upload", "session_token": token}, json=body
    )
    assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST")


def test_multipart_bad_input(
    server: Server, admin: httpx.Client, base: str, make_user: Callable[..., tuple[str, str]]
) -> None:
    path = f"{base}/bad.bin"
    token = _initiate(admin, path)
    url, headers = _part_url(admin, path, token, 1)
    etag = httpx.put(url, content=b"abc", headers=headers).headers["etag"]
    complete = {"action": "complete-upload", "session_token": token}

    def finish(parts: list[dict[str, Any]]) -> httpx.Response:
        return admin.post(FILES + path, params=complete, json={"parts": parts})

    assert_error(
        finish([{"part_number": 1, "etag": '"' + "0" * 32 + '"'}]), 400, "INVALID_PARAMETER_VALUE"
    )
    assert_error(finish([{"part_number": 1, "etag": "../../x"}]), 400, "INVALID_PARAMETER_VALUE")
    assert_error(finish([{"part_number": 2, "etag": etag}]), 400, "INVALID_PARAMETER_VALUE")
    assert_error(finish([]), 400, "INVALID_PARAMETER_VALUE")
    two = [{"part_number": 1, "etag": etag}, {"part_number": 1, "etag": etag}]
    assert_error(finish(two), 400, "INVALID_PARAMETER_VALUE")
    r = admin.post(
        FILES + path, params=complete, content=b"{bad", headers={"Content-Type": "application/json"}
    )
    assert_error(r, 400, "MALFORMED_REQUEST")
    assert_error(admin.post(FILES + path, params=complete, json={}), 400, "INVALID_PARAMETER_VALUE")
    # Unknown session, wrong path, bad part numbers, unsupported upload types and actions.
    part = {"upload_type": "multipart", "part_number": "1"}
    r = admin.put(FILES + path, params={**part, "session_token": "nope"}, content=b"x")
    assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST")
    r = admin.put(FILES + f"{base}/other", params={**part, "session_token": token}, content=b"x")
    assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST")
    r = admin.put(
        FILES + path, params={**part, "session_token": token, "part_number": "0"}, content=b"x"
    )
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")
    r = admin.put(
        FILES + path, params={"upload_type": "resumable", "session_token": token}, content=b"x"
    )
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")
    r = admin.put(
        FILES + path, params={"upload_type": "multipart", "session_token": token}, content=b"x"
    )
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")
    assert_error(
        admin.post(FILES + path, params={"action": "explode"}), 400, "INVALID_PARAMETER_VALUE"
    )
    assert_error(
        admin.post(FILES + path, params={"action": "complete-upload"}, json={"parts": []}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    r = admin.post(
        "/api/2.0/fs/create-upload-part-urls",
        json={"path": path, "session_token": token, "start_part_number": 1, "count": 0},
    )
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")
    r = admin.post(
        "/api/2.0/fs/create-upload-part-urls",
        json={"path": path, "session_token": "nope", "start_part_number": 1, "count": 1},
    )
    assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST")
    r = admin.post("/api/2.0/fs/create-upload-part-urls", json={"path": path})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")
    # Another user cannot see, feed, complete or abort the session.
    _, other_token = make_user("files")
    with server.client(other_token) as other:
        r = other.put(url, content=b"x")
        assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST")
        assert_error(
            other.post(
                FILES + path, params=complete, json={"parts": [{"part_number": 1, "etag": etag}]}
            ),
            404,
            "RESOURCE_DOES_NOT_EXIST",
        )
        r = other.delete(FILES + path, params={"action": "abort-upload", "session_token": token})
        assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST")
    # Abort drops it; the part URLs die with it.
    r = admin.post(
        "/api/2.0/fs/create-abort-upload-url", json={"path": path, "session_token": token}
    )
    assert r.status_code == 200, r.text
    abort = r.json()["abort_upload_url"]
    r = httpx.delete(abort["url"], headers={h["name"]: h["value"] for h in abort["headers"]})
    assert r.status_code == 200, r.text
    assert_error(httpx.put(url, content=b"x", headers=headers), 404, "RESOURCE_DOES_NOT_EXIST")


def test_initiate_without_overwrite_on_existing_is_409(admin: httpx.Client, base: str) -> None:
    _upload(admin, f"{base}/exists", b"1")
    r = admin.post(
        FILES + f"{base}/exists", params={"action": "initiate-upload", "overwrite": "false"}
    )
    assert_error(r, 409, "RESOURCE_ALREADY_EXISTS")


# -- directories ------------------------------------------------------------------------------


def test_directories_create_list_paginate_head_delete(admin: httpx.Client, base: str) -> None:
    assert admin.put(DIRS + f"{base}/d").status_code == 204
    assert admin.put(DIRS + f"{base}/d").status_code == 204  # idempotent
    for name in ("c", "a", "e", "b"):
        _upload(admin, f"{base}/d/{name}", name.encode())
    admin.put(DIRS + f"{base}/d/sub")
    seen: list[dict[str, Any]] = []
    params: dict[str, Any] = {"page_size": 2}
    pages = 0
    while True:
        body = admin.get(DIRS + f"{base}/d", params=params).json()
        seen += body["contents"]
        pages += 1
        if not body.get("next_page_token"):
            break
        params["page_token"] = body["next_page_token"]
    assert pages == 3
    assert [e["name"] for e in seen] == ["a", "b", "c", "e", "sub"]
    assert seen[0] == {
        "path": f"{base}/d/a",
        "is_directory": False,
        "file_size": 1,
        "last_modified": seen[0]["last_modified"],
        "name": "a",
    }
    assert seen[-1]["is_directory"] is True and seen[-1]["path"] == f"{base}/d/sub/"
    assert admin.head(DIRS + f"{base}/d").status_code == 200
    assert admin.head(DIRS + f"{base}/d/a").status_code == 404  # a file, not a directory
    assert admin.head(DIRS + f"{base}/nope").status_code == 404
    assert_error(admin.delete(DIRS + f"{base}/d"), 400, "DIRECTORY_NOT_EMPTY")
    assert admin.delete(DIRS + f"{base}/d/sub").status_code == 204
    assert_error(admin.delete(DIRS + f"{base}/d/sub"), 404, "RESOURCE_DOES_NOT_EXIST")
    assert_error(admin.get(DIRS + f"{base}/nope"), 404, "RESOURCE_DOES_NOT_EXIST")


def test_directory_bad_input(admin: httpx.Client, base: str) -> None:
    _upload(admin, f"{base}/file", b"1")
    assert_error(admin.put(DIRS + f"{base}/file"), 409, "RESOURCE_ALREADY_EXISTS")
    assert_error(admin.put(DIRS + f"{base}/file/sub"), 409, "RESOURCE_ALREADY_EXISTS")
    admin.put(DIRS + f"{base}/d")
    r = admin.get(DIRS + f"{base}/d", params={"page_token": "forged!"})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")
    r = admin.get(DIRS + f"{base}/d", params={"page_size": -1})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")
    assert_error(admin.delete(DIRS + "/"), 400, "INVALID_PARAMETER_VALUE")


# -- traversal in the URL ---------------------------------------------------------------------

RAW_TRAVERSALS = [
    "/a/../../etc/passwd",
    "/../etc/passwd",
    "/a/%2e%2e/%2e%2e/etc/passwd",
    "/a/%2E%2E/b",
    "/a/%252e%252e/b",
    "/a/%25252e%25252e/b",
    "/a/..%2f..%2fetc",
    "/a%00b",
    "/a/%5c..%5cb",
    "//etc/passwd",
    "/a//b",
    "/.kiln-staging/x",
]


def _raw(server: Server, method: str, target: str, body: bytes | None = None) -> tuple[int, bytes]:
    """Send a request line exactly as written (httpx would normalize the path)."""
    parts = urlsplit(server.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.putrequest(method, target, skip_accept_encoding=True)
        conn.putheader("Authorization", f"Bearer {server.token}")
        conn.putheader("Content-Length", str(len(body or b"")))
        conn.endheaders(body)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


@pytest.mark.parametrize("suffix", RAW_TRAVERSALS)
@pytest.mark.parametrize(
    ("method", "prefix"),
    [("GET", FILES), ("PUT", FILES), ("DELETE", FILES), ("PUT", DIRS), ("GET", DIRS)],
)
def test_traversal_in_url_is_400(server: Server, method: str, prefix: str, suffix: str) -> None:
    status, body = _raw(server, method, prefix + suffix, b"planted" if method == "PUT" else None)
    assert status == 400, (status, body)
    assert b"INVALID_PARAMETER_VALUE" in body


def test_traversal_writes_nothing_outside_the_root(server: Server) -> None:
    outside = server.data_dir / "planted.txt"
    for suffix in (
        "/../planted.txt",
        "/%2e%2e/planted.txt",
        "/x/%252e%252e/%252e%252e/planted.txt",
    ):
        _raw(server, "PUT", FILES + suffix, b"planted")
    assert not outside.exists()
    assert not (server.data_dir.parent / "planted.txt").exists()
