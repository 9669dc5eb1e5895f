"""Pure parts of the catalog: names, full names, and the DBFS confinement of locations."""

from __future__ import annotations

from pathlib import Path

import pytest

from kiln.catalog.delta_log import spark_type_text
from kiln.catalog.names import split_full_name, validate_name
from kiln.catalog.storage import Storage
from kiln.errors import InvalidParameterValue


def test_names_are_validated_and_lower_cased() -> None:
    assert validate_name("table", "My_Table-1") == "my_table-1"
    for bad in ("", None, "a.b", "a b", "a/b", "-x", "x" * 256, "ü"):
        with pytest.raises(InvalidParameterValue):
            validate_name("table", bad)


def test_full_names() -> None:
    assert split_full_name("table", "Main.Default.T", 3) == ("main", "default", "t")
    assert split_full_name("schema", "main.s", 2) == ("main", "s")
    for bad in ("main.t", "a.b.c.d", "", "a..b"):
        with pytest.raises(InvalidParameterValue):
            split_full_name("table", bad, 3)


def test_locations_are_confined_to_dbfs(tmp_path: Path) -> None:
    storage = Storage(str(tmp_path))
    root = tmp_path.resolve()
    assert storage.dbfs_path("dbfs:/a/b") == "/a/b"
    assert storage.dbfs_path("dbfs:///a/b/") == "/a/b"
    assert storage.dbfs_path("/mnt/x") == "/mnt/x"
    assert storage.dbfs_path(f"file://{root}/t") == "/t"
    assert storage.dbfs_path(f"{root}/t") == "/t"
    assert storage.url("/t") == f"file://{root}/t"
    for bad in (
        "s3://b/k",
        "file:///etc",
        "dbfs:/",
        "dbfs:/a/../b",
        "relative",
        "",
        "//x",
        "dbfs:/.kiln-staging/u",
    ):
        with pytest.raises(InvalidParameterValue):
            storage.dbfs_path(bad)


def test_spark_type_text() -> None:
    assert spark_type_text("long") == "bigint"
    assert spark_type_text("decimal(10,2)") == "decimal(10,2)"
    nested = {
        "type": "array",
        "elementType": {"type": "map", "keyType": "string", "valueType": "integer"},
    }
    assert spark_type_text(nested) == "array<map<string,int>>"
