"""DbfsStore on a local root and on an fsspec memory root, and the streaming helpers."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from kiln.dbfs import DbfsStore, streams
from kiln.dbfs.forms import receive_put_form
from kiln.dbfs.paths import STAGING_DIR
from kiln.errors import (
    BadRequest,
    InvalidParameterValue,
    KilnError,
    MalformedRequest,
    ResourceAlreadyExists,
    ResourceDoesNotExist,
)


@pytest.fixture(params=["local", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DbfsStore]:
    """A store on a fresh local folder, or on a fresh fsspec memory root."""
    if request.param == "local":
        yield DbfsStore(str(tmp_path / "root"))
        return
    root = f"memory://kiln-{uuid.uuid4().hex}"
    store = DbfsStore(root)
    yield store
    with contextlib.suppress(FileNotFoundError):  # nothing was ever written
        store.fs.rm(store.root, recursive=True)


def _write(store: DbfsStore, path: str, data: bytes, *, overwrite: bool = False) -> None:
    staged = store.staging_location()
    with store.open_write(staged) as f:
        f.write(data)
    store.publish(staged, path, overwrite=overwrite)


def _read(store: DbfsStore, path: str) -> bytes:
    with store.open_read(path) as f:
        return f.read()


def test_write_stat_list_read(store: DbfsStore) -> None:
    _write(store, "/a/b/c.txt", b"hello")
    entry = store.stat("/a/b/c.txt")
    assert entry is not None and not entry.is_dir and entry.size == 5 and entry.mtime > 0
    assert _read(store, "/a/b/c.txt") == b"hello"
    parent = store.stat("/a/b")
    assert parent is not None and parent.is_dir and parent.size == 0
    assert [(e.path, e.is_dir) for e in store.listdir("/a")] == [("/a/b", True)]
    assert store.stat("/nope") is None
    with pytest.raises(ResourceDoesNotExist):
        store.require("/nope")


def test_staging_is_hidden_from_the_root_listing(store: DbfsStore) -> None:
    _write(store, "/f", b"1")
    store.fs.makedirs(store.staging_root, exist_ok=True)
    with store.open_write(store.staging_location()) as f:
        f.write(b"in flight")
    names = {e.path for e in store.listdir("/")}
    assert names == {"/f"} and f"/{STAGING_DIR}" not in names


def test_publish_overwrite_rules(store: DbfsStore) -> None:
    _write(store, "/f", b"1")
    with pytest.raises(ResourceAlreadyExists):
        _write(store, "/f", b"2")
    _write(store, "/f", b"3", overwrite=True)
    assert _read(store, "/f") == b"3"
    store.makedirs("/d")
    with pytest.raises(ResourceAlreadyExists):
        _write(store, "/d", b"x", overwrite=True)
    with pytest.raises(ResourceAlreadyExists):
        _write(store, "/f/under", b"x", overwrite=True)
    with pytest.raises(InvalidParameterValue):
        store.check_target("/", overwrite=True)


def test_makedirs_refuses_files_on_the_way(store: DbfsStore) -> None:
    store.makedirs("/x/y")
    store.makedirs("/x/y")
    _write(store, "/x/file", b"1")
    for path in ("/x/file", "/x/file/z"):
        with pytest.raises(ResourceAlreadyExists):
            store.makedirs(path)


def test_remove(store: DbfsStore) -> None:
    _write(store, "/d/e/f", b"1")
    with pytest.raises(BadRequest) as info:
        store.remove("/d", recursive=False)
    assert info.value.error_code == "IO_ERROR"
    assert store.remove("/d/e/f", recursive=False)
    assert store.remove("/d", recursive=True)
    assert store.stat("/d") is None
    assert not store.remove("/d", recursive=True)
    with pytest.raises(InvalidParameterValue):
        store.remove("/", recursive=True)


def test_move(store: DbfsStore) -> None:
    _write(store, "/src/f", b"1")
    _write(store, "/taken", b"2")
    with pytest.raises(ResourceAlreadyExists):
        store.move("/src", "/taken")
    with pytest.raises(InvalidParameterValue):
        store.move("/src", "/src/inside")
    with pytest.raises(ResourceDoesNotExist):
        store.move("/missing", "/x")
    store.move("/src", "/deep/dst")
    assert _read(store, "/deep/dst/f") == b"1"
    assert store.stat("/src") is None


def test_local_symlinks_cannot_leave_the_root(tmp_path: Path) -> None:
    store = DbfsStore(str(tmp_path / "root"))
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"s")
    (tmp_path / "root" / "escape").symlink_to(outside)
    (tmp_path / "root" / "inside").symlink_to(tmp_path / "root" / STAGING_DIR)
    for path in ("/escape", "/escape/secret", "/escape/new"):
        with pytest.raises(InvalidParameterValue):
            store.location(path)
    with pytest.raises(InvalidParameterValue):
        _write(store, "/escape/new", b"x")
    assert not (outside / "new").exists()
    assert {e.path for e in store.listdir("/")} == {"/inside"}  # an in-root link is fine


def test_a_local_root_is_created(tmp_path: Path) -> None:
    DbfsStore(str(tmp_path / "new" / "root"))
    assert (tmp_path / "new" / "root" / STAGING_DIR).is_dir()


async def _chunks(data: bytes, size: int) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


async def test_receive_and_iterate_in_blocks(store: DbfsStore) -> None:
    data = os.urandom(3 * streams.BLOCK_SIZE + 12345)
    staged = await streams.receive(store, _chunks(data, 65536))
    assert staged.size == len(data)
    store.publish(staged.location, "/big", overwrite=False)
    f, entry = await streams.open_file(store, "/big")
    assert entry.size == len(data)
    got = [c async for c in streams.iter_open_file(f, 10, len(data) - 20, block_size=1_000_000)]
    assert b"".join(got) == data[10:-10]
    assert max(len(c) for c in got) == 1_000_000
    f, _ = await streams.open_file(store, "/big")
    assert [c async for c in streams.iter_open_file(f, 0, 0)] == []
    with pytest.raises(ResourceDoesNotExist):
        await streams.open_file(store, "/")


async def test_a_failed_body_leaves_nothing_staged(store: DbfsStore) -> None:
    async def broken() -> AsyncIterator[bytes]:
        yield b"x" * 100
        raise RuntimeError("client went away")

    store.fs.makedirs(store.staging_root, exist_ok=True)
    before = set(store.fs.ls(store.staging_root, detail=False))
    with pytest.raises(RuntimeError):
        await streams.receive(store, broken())
    assert set(store.fs.ls(store.staging_root, detail=False)) == before


def _form(boundary: str, parts: list[tuple[str, str | None, bytes]]) -> bytes:
    out = b""
    for name, filename, value in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        out += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode()
        out += value + b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


@pytest.mark.parametrize("chunk", [1, 7, 4096, 10_000_000])
async def test_put_form_is_parsed_however_it_is_split(store: DbfsStore, chunk: int) -> None:
    data = os.urandom(50_000) if chunk > 1 else b"small\r\n--not-a-boundary"
    body = _form(
        "XyZ",
        [("path", None, b"/p/f.bin"), ("file", "f.bin", data), ("overwrite", None, b"True")],
    )
    form = await receive_put_form(
        store, "multipart/form-data; boundary=XyZ", _chunks(body, chunk), field_limit=1000
    )
    assert form.fields == {"path": "/p/f.bin", "overwrite": "True"}
    assert form.staged is not None and form.staged.size == len(data)
    with store.fs.open(form.staged.location, "rb") as f:
        assert f.read() == data


async def test_put_form_without_a_file(store: DbfsStore) -> None:
    body = _form("b", [("path", None, b"/x"), ("contents", None, b"aGk=")])
    form = await receive_put_form(
        store, "multipart/form-data; boundary=b", _chunks(body, 5), field_limit=1000
    )
    assert form.staged is None and form.fields == {"path": "/x", "contents": "aGk="}


@pytest.mark.parametrize(
    ("content_type", "body", "error"),
    [
        ("multipart/form-data", b"--b--\r\n", MalformedRequest),
        ("multipart/form-data; boundary=b", b"--b\r\nContent-Dispo", MalformedRequest),
        (
            "multipart/form-data; boundary=b",
            b"--b\r\nContent-Type: text/plain\r\n\r\nx\r\n--b--\r\n",
            MalformedRequest,
        ),
        (
            "multipart/form-data; boundary=b",
            _form("b", [("file", "a", b"1"), ("file", "b", b"2")]),
            InvalidParameterValue,
        ),
        (
            "multipart/form-data; boundary=b",
            _form("b", [("path", None, b"x" * 2000)]),
            KilnError,
        ),
    ],
)
async def test_bad_put_forms(
    store: DbfsStore, content_type: str, body: bytes, error: type[Exception]
) -> None:
    store.fs.makedirs(store.staging_root, exist_ok=True)
    before = set(store.fs.ls(store.staging_root, detail=False))
    with pytest.raises(error):
        await receive_put_form(store, content_type, _chunks(body, 3), field_limit=1000)
    assert set(store.fs.ls(store.staging_root, detail=False)) == before
