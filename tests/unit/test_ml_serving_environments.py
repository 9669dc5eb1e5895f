"""Served models' environments: requirements read from the model, checked against Kiln's own
interpreter, and the cache key of a venv built for what is missing."""

from __future__ import annotations

import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from kiln.ml.serving.environments import (
    EnvironmentFailed,
    ModelEnvironment,
    environment_key,
    read_requirements,
    unsatisfied,
)


def test_read_requirements_skips_comments_and_blank_lines(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text(
        "# written by mlflow\nmlflow==3.0\n\n  pandas>=2  # pinned loosely\n"
    )
    assert read_requirements(tmp_path) == ["mlflow==3.0", "pandas>=2"]
    assert read_requirements(tmp_path / "nothing-here") == []


@pytest.mark.parametrize("line", ["-r other.txt", "--index-url http://x", "-e ."])
def test_read_requirements_refuses_pip_options(tmp_path: Path, line: str) -> None:
    (tmp_path / "requirements.txt").write_text(f"mlflow\n{line}\n")
    with pytest.raises(EnvironmentFailed, match="Unsupported line"):
        read_requirements(tmp_path)


def test_unsatisfied_lists_missing_and_other_versions() -> None:
    mlflow = version("mlflow")
    assert unsatisfied([f"mlflow=={mlflow}", "pandas", "numpy>=1"]) == []
    assert unsatisfied(["mlflow==0.0.1", "pyjokes==0.8.3", f"mlflow>={mlflow}"]) == [
        "mlflow==0.0.1",
        "pyjokes==0.8.3",
    ]
    # A requirement whose marker does not apply here is skipped.
    assert unsatisfied(['pyjokes==0.8.3; python_version < "3.0"']) == []
    # A URL requirement is always installed.
    url = "pkg @ https://example.invalid/pkg-1.0.tar.gz"
    assert unsatisfied([url]) == [url]


def test_unsatisfied_refuses_invalid_requirements() -> None:
    with pytest.raises(EnvironmentFailed, match="Invalid requirement"):
        unsatisfied(["not a requirement!!"])


def test_environment_key_is_order_insensitive() -> None:
    a = environment_key(["b==1", "a==2"])
    assert a == environment_key(["a==2", "b==1"])
    assert a != environment_key(["a==2"])
    assert len(a) == 20


def test_environment_messages() -> None:
    assert ModelEnvironment(sys.executable, ()).message.startswith("Runs in Kiln's environment")
    own = ModelEnvironment("/venv/bin/python", ("pyjokes==0.8.3",))
    assert own.message == "Runs in its own environment with pyjokes==0.8.3."
