"""Pure functions of kiln.ml: artifact path confinement, model names, the MLflow store URI."""

from __future__ import annotations

from pathlib import Path

import pytest

from kiln.errors import InvalidParameterValue
from kiln.ml.artifacts import artifact_file, run_artifact_dir, source_files_root
from kiln.ml.tracking import mlflow_store_uri
from kiln.ml.uc_registry import is_model_version, model_storage_path, split_model_name

ROOT = "/WorkspaceInternal/Mlflow/Artifacts/1/Runs/abc/artifacts"


def test_artifact_file_joins_inside_the_root() -> None:
    assert artifact_file(ROOT, "a/b.txt") == ROOT + "/a/b.txt"
    assert artifact_file(ROOT, "a/") == ROOT + "/a"
    assert artifact_file(ROOT, None) == ROOT
    assert artifact_file(ROOT, "") == ROOT


@pytest.mark.parametrize(
    "bad",
    [
        "..",
        "../x",
        "a/../../x",
        "%2e%2e/x",
        "%252e%252e/x",
        "a//b",
        "a#b",
        "a%23b",
        "a?b",
        "a\\b",
        "a%5cb",
        "/abs",
        "a/\x00b",
    ],
)
def test_artifact_file_refuses_escapes(bad: str) -> None:
    with pytest.raises(InvalidParameterValue):
        artifact_file(ROOT, bad)


def test_run_artifact_dir() -> None:
    assert (
        run_artifact_dir("7", "abc") == "/WorkspaceInternal/Mlflow/Artifacts/7/Runs/abc/artifacts"
    )
    for exp, run in (("../1", "abc"), ("1", "a/b"), ("", "abc")):
        with pytest.raises(InvalidParameterValue):
            run_artifact_dir(exp, run)


def test_model_names() -> None:
    assert split_model_name("main.default.m-1") == ("main", "default", "m-1")
    assert model_storage_path("c.s.m", "3") == "/Models/c/s/m/3"
    for bad in ("m", "a.b", "a.b.c.d", "a..c", "a.b./", None, 3):
        with pytest.raises(InvalidParameterValue):
            split_model_name(bad)
    for bad_version in ("0", "-1", "x", "1/2"):
        with pytest.raises(InvalidParameterValue):
            model_storage_path("c.s.m", bad_version)


def test_mlflow_store_uri(tmp_path: Path) -> None:
    assert mlflow_store_uri(None, tmp_path) == f"sqlite:///{tmp_path / 'mlflow.db'}"
    pg = mlflow_store_uri("postgresql://u:p@h:5432/kiln", tmp_path)
    assert pg == "postgresql+psycopg://u:p@h:5432/kiln?options=-csearch_path%3Dmlflow"
    pg = mlflow_store_uri("postgresql://u@h/kiln?sslmode=disable", tmp_path)
    assert pg.endswith("?sslmode=disable&options=-csearch_path%3Dmlflow")


def test_source_files_root() -> None:
    base = "dbfs:/databricks/mlflow-tracking/3"
    assert source_files_root(f"{base}/abc/artifacts/model") == (
        "/WorkspaceInternal/Mlflow/Artifacts/3/Runs/abc/artifacts/model"
    )
    assert source_files_root(f"{base}/logged_models/m-1/artifacts") == (
        "/WorkspaceInternal/Mlflow/Artifacts/3/LoggedModels/m-1/artifacts"
    )
    for bad in ("s3://b/k", f"{base}/abc/../x", f"{base}/../x", "", f"{base}/a//b"):
        with pytest.raises(InvalidParameterValue):
            source_files_root(bad)


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        (1, True),
        ("42", True),
        ("9999999999", True),
        (0, False),
        ("01", False),
        ("1.0", False),
        (True, False),
        (None, False),
        ("", False),
        ("12345678901", False),
    ],
)
def test_model_version_numbers(value: object, ok: bool) -> None:
    assert is_model_version(value) is ok
