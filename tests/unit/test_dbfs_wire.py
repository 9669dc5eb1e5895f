"""The DBFS and Files API wire helpers: base64 blocks, the read body, directory entries."""

from __future__ import annotations

import base64
import json
import os

import pytest

from kiln.dbfs import Entry
from kiln.errors import InvalidParameterValue, MaxBlockSizeExceeded
from kiln.server.schemas.dbfs import FileInfo, decode_block, read_response_body
from kiln.server.schemas.files import DirectoryEntry

LIMIT = 1024 * 1024


@pytest.mark.parametrize("size", [0, 1, 2, 3, 1000, LIMIT])
def test_decode_block_round_trips(size: int) -> None:
    data = os.urandom(size)
    assert decode_block(base64.b64encode(data).decode(), LIMIT) == data


@pytest.mark.parametrize("size", [LIMIT + 1, LIMIT + 3, 3 * LIMIT])
def test_decode_block_refuses_oversized_blocks(size: int) -> None:
    with pytest.raises(MaxBlockSizeExceeded):
        decode_block(base64.b64encode(os.urandom(size)).decode(), LIMIT)


@pytest.mark.parametrize(
    "bad", ["abc", "a b=", "not base64!", "é===", "YQ==YQ==", "Y===", "=YQ=", "YQ\n=", "-_-_"]
)
def test_decode_block_refuses_bad_base64(bad: str) -> None:
    with pytest.raises(InvalidParameterValue):
        decode_block(bad, LIMIT)


@pytest.mark.parametrize("size", [0, 1, 5, 1000])
def test_read_response_body_is_json(size: int) -> None:
    data = os.urandom(size)
    body = json.loads(read_response_body(data))
    assert body["bytes_read"] == size
    assert base64.b64decode(body["data"]) == data


def test_wire_entries() -> None:
    file = Entry("/a/b.txt", False, 7, 1.5)
    folder = Entry("/a/c", True, 0, 2.25)
    assert FileInfo.of(file).model_dump() == {
        "path": "/a/b.txt",
        "is_dir": False,
        "file_size": 7,
        "modification_time": 1500,
    }
    assert DirectoryEntry.of(file).model_dump(exclude_none=True) == {
        "path": "/a/b.txt",
        "is_directory": False,
        "file_size": 7,
        "last_modified": 1500,
        "name": "b.txt",
    }
    assert DirectoryEntry.of(folder).model_dump(exclude_none=True) == {
        "path": "/a/c/",
        "is_directory": True,
        "last_modified": 2250,
        "name": "c",
    }
