import pytest

from kiln.errors import InvalidParameterValue
from kiln.paths import normalize_absolute_path, strip_scheme


@pytest.mark.parametrize(
    ("raw", "clean"),
    [("/", "/"), ("/a", "/a"), ("/a/b/", "/a/b"), ("/Users/x@y.com/nb", "/Users/x@y.com/nb")],
)
def test_clean_paths_pass(raw: str, clean: str) -> None:
    assert normalize_absolute_path(raw) == clean


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "relative/path",
        "/a/../b",
        "/..",
        "/a/./b",
        "/a/%2e%2e/b",
        "/a/%2E%2E/b",
        "/a/%252e%252e/b",
        "/a/%25252e%25252e/b",
        "/a/..%2fb",
        "/a%2f..%2fb",
        "/a\x00b",
        "/a/%00b",
        "/a\\..\\b",
        "/a/%5c..",
        "/a//b",
        "//etc/passwd",
        "/" + "a" * 5000,
    ],
)
def test_bad_paths_are_refused(raw: str) -> None:
    with pytest.raises(InvalidParameterValue):
        normalize_absolute_path(raw)


def test_strip_scheme() -> None:
    assert strip_scheme("dbfs:/a/b", "dbfs") == "/a/b"
    assert strip_scheme("dbfs:///a", "dbfs") == "/a"
    assert strip_scheme("/a", "dbfs") == "/a"
    with pytest.raises(InvalidParameterValue):
        strip_scheme("s3://bucket/key", "dbfs")
