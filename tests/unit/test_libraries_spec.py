"""Library validation and the status table (pure functions)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from kiln.compute.libraries.spec import parse_libraries, parse_library
from kiln.compute.libraries.statuses import TRANSITIONS, LibraryStatus, can_transition, transition
from kiln.errors import InvalidParameterValue


def test_pypi_maven_and_files_parse() -> None:
    pypi = parse_library({"pypi": {"package": "humanize==4.17.0"}}, "l")
    assert pypi.kind == "pypi" and pypi.value == "humanize==4.17.0" and pypi.repo is None
    maven = parse_library(
        {"maven": {"coordinates": "com.acme:lib:1.0", "exclusions": ["org.slf4j:slf4j-api"]}}, "l"
    )
    assert maven.exclusions == ("org.slf4j:slf4j-api",)
    whl = parse_library({"whl": "dbfs:/FileStore/a-1.0-py3-none-any.whl"}, "l")
    assert whl.file is not None and (whl.file.store, whl.file.path) == (
        "dbfs",
        "/FileStore/a-1.0-py3-none-any.whl",
    )
    req = parse_library({"requirements": "/Workspace/Users/a@b/requirements.txt"}, "l")
    assert req.file is not None and req.file.store == "workspace"
    assert req.file.path == "/Users/a@b/requirements.txt"
    jar = parse_library({"jar": "/Volumes/c/s/v/x.jar"}, "l")
    assert jar.file is not None and jar.file.store == "volumes"
    # The same library twice is one key, whatever the key order.
    a = parse_library({"pypi": {"package": "x", "repo": "https://p.example/simple"}}, "l")
    b = parse_library({"pypi": {"repo": "https://p.example/simple", "package": "x"}}, "l")
    assert a.key == b.key


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({}, "l must name one library kind"),
        ({"pypi": {"package": "a"}, "whl": "dbfs:/a.whl"}, "names 2 library kinds"),
        ({"egg": "dbfs:/a.egg"}, "l.egg"),
        ({"cran": {"package": "x"}}, "l.cran"),
        ({"pypi": {"package": "--index-url=http://evil"}}, "l.pypi.package"),
        ({"pypi": {"package": "a", "repo": "ftp://x"}}, "l.pypi.repo"),
        ({"pypi": {}}, "l.pypi.package"),
        ({"maven": {"coordinates": "only-one-part"}}, "l.maven.coordinates"),
        ({"maven": {"coordinates": "a:b:1", "exclusions": ["bad"]}}, "l.maven.exclusions[0]"),
        ({"whl": "s3://bucket/a.whl"}, "l.whl"),
        ({"whl": "dbfs:/a/../b.whl"}, "l.whl"),
        ({"whl": "dbfs:/a/b.zip"}, "l.whl"),
        ({"jar": "/Volumes/c/x.jar"}, "l.jar"),
        ({"requirements": "relative.txt"}, "l.requirements"),
        ({"nope": "x"}, "unknown library kind"),
    ],
)
def test_bad_libraries_name_the_field(raw: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidParameterValue) as err:
        parse_library(raw, "l")
    assert field in err.value.message


def test_library_lists() -> None:
    with pytest.raises(InvalidParameterValue, match="libraries must be a non-empty list"):
        parse_libraries([])
    with pytest.raises(InvalidParameterValue, match=r"libraries\[1\]"):
        parse_libraries([{"pypi": {"package": "a"}}, "x"])


def test_status_transitions() -> None:
    assert set(TRANSITIONS) == set(LibraryStatus)
    row = SimpleNamespace(status="PENDING", messages=[])
    transition(row, LibraryStatus.INSTALLING, "Installing")
    assert row.status == "INSTALLING" and row.messages == ["Installing"]
    transition(row, LibraryStatus.INSTALLED)
    assert row.messages == []
    with pytest.raises(ValueError, match="INSTALLED to INSTALLING"):
        transition(row, LibraryStatus.INSTALLING)
    assert can_transition("INSTALLED", LibraryStatus.UNINSTALL_ON_RESTART)
    assert not can_transition("UNINSTALL_ON_RESTART", LibraryStatus.INSTALLED)
