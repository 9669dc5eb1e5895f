"""DBFS and Files API path cleaning, and the Range / If-Unmodified-Since helpers."""

from __future__ import annotations

import pytest

from kiln.dbfs.conditions import (
    PreconditionFailed,
    RangeNotSatisfiable,
    check_unmodified_since,
    http_date,
    parse_range,
)
from kiln.dbfs.paths import STAGING_DIR, dbfs_path, files_path, join, name_of, parent_of
from kiln.errors import InvalidParameterValue


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("/", "/"),
        ("dbfs:/", "/"),
        ("/a/b/", "/a/b"),
        ("dbfs:/a/b", "/a/b"),
        ("dbfs:///a/b", "/a/b"),
        ("DBFS:/a", "/a"),
        ("/FileStore/my file.txt", "/FileStore/my file.txt"),
        ("/tmp/100%.csv", "/tmp/100%.csv"),
        (f"/x/{STAGING_DIR}", f"/x/{STAGING_DIR}"),  # reserved only at the top
    ],
)
def test_dbfs_paths_are_cleaned(raw: str, clean: str) -> None:
    assert dbfs_path(raw) == clean


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "a/b",
        "/a/../b",
        "dbfs:/../etc",
        "/a/%2e%2e/b",
        "/a/%252e%252e/b",
        "/a\x00",
        "/a\\b",
        "/a//b",
        "s3://bucket/x",
        "file:/etc/passwd",
        f"/{STAGING_DIR}",
        f"dbfs:/{STAGING_DIR}/abc",
    ],
)
def test_bad_dbfs_paths_are_400(raw: str) -> None:
    with pytest.raises(InvalidParameterValue):
        dbfs_path(raw)


@pytest.mark.parametrize("raw", [None, 5, ["/a"]])
def test_non_string_dbfs_paths_are_400(raw: object) -> None:
    with pytest.raises(InvalidParameterValue):
        dbfs_path(raw)


def test_files_paths_have_no_scheme_and_no_reserved_root() -> None:
    assert files_path("/Volumes/c/s/v/f.txt") == "/Volumes/c/s/v/f.txt"
    for raw in ("dbfs:/x", "Volumes/x", "//x", f"/{STAGING_DIR}/p"):
        with pytest.raises(InvalidParameterValue):
            files_path(raw)


def test_join_parent_and_name() -> None:
    assert join("/", "a") == "/a"
    assert join("/a", "b") == "/a/b"
    assert parent_of("/a/b") == "/a"
    assert parent_of("/a") == "/"
    assert parent_of("/") == "/"
    assert name_of("/a/b") == "b"


@pytest.mark.parametrize(
    ("header", "size", "span"),
    [
        (None, 10, None),
        ("", 10, None),
        ("bytes=0-0", 10, (0, 0)),
        ("bytes=2-5", 10, (2, 5)),
        ("bytes=2-", 10, (2, 9)),
        ("bytes=5-100", 10, (5, 9)),
        ("bytes=-3", 10, (7, 9)),
        ("bytes=-30", 10, (0, 9)),
        (" Bytes = 1-2 ", 10, (1, 2)),
        ("bytes=0-1,4-5", 10, None),  # several ranges: the whole file
        ("items=0-1", 10, None),  # a unit we do not speak: ignored
    ],
)
def test_parse_range(header: str | None, size: int, span: tuple[int, int] | None) -> None:
    assert parse_range(header, size) == span


@pytest.mark.parametrize(
    ("header", "size"),
    [
        ("bytes=10-", 10),
        ("bytes=5-2", 10),
        ("bytes=x-", 10),
        ("bytes=1", 10),
        ("bytes=-0", 10),
        ("bytes=-5", 0),
        ("bytes=0-", 0),
        ("bytes=--1", 10),
    ],
)
def test_unsatisfiable_ranges(header: str, size: int) -> None:
    with pytest.raises(RangeNotSatisfiable) as info:
        parse_range(header, size)
    assert info.value.http_status == 416


def test_if_unmodified_since() -> None:
    mtime = 1_700_000_000.75
    check_unmodified_since(None, mtime)
    check_unmodified_since(http_date(mtime), mtime)  # same second: unchanged
    check_unmodified_since("not a date", mtime)  # ignored, as RFC 9110 says
    with pytest.raises(PreconditionFailed) as info:
        check_unmodified_since(http_date(mtime - 60), mtime)
    assert info.value.http_status == 412


def test_http_date_is_rfc_9110() -> None:
    assert http_date(0) == "Thu, 01 Jan 1970 00:00:00 GMT"
