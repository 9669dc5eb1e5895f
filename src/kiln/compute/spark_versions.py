"""Databricks runtime keys (`16.4.x-scala2.13`) accepted and listed; the Spark that runs is
the one installed with Kiln (pyspark), and the listing says so."""

from __future__ import annotations

import re
from functools import cache

from kiln.errors import InvalidParameterValue

__all__ = ["RUNTIME_KEYS", "installed_spark_version", "list_spark_versions", "validate"]

# The runtimes offered in `clusters/spark-versions` (the LTS lines clients pin to).
RUNTIME_KEYS: tuple[tuple[str, str], ...] = (
    ("17.3.x-scala2.13", "17.3 LTS"),
    ("16.4.x-scala2.13", "16.4 LTS"),
    ("16.4.x-scala2.12", "16.4 LTS"),
    ("15.4.x-scala2.12", "15.4 LTS"),
    ("14.3.x-scala2.12", "14.3 LTS"),
    ("13.3.x-scala2.12", "13.3 LTS"),
    ("17.3.x-cpu-ml-scala2.13", "17.3 LTS ML"),
    ("16.4.x-cpu-ml-scala2.13", "16.4 LTS ML"),
    ("15.4.x-cpu-ml-scala2.12", "15.4 LTS ML"),
)

# Any Databricks runtime key: major.minor.x, optional flavours, a Scala suffix.
_KEY = re.compile(r"^\d{1,2}\.\d{1,2}\.x(-[a-z0-9]+)*-scala2\.1[23]$")
# Kiln's own key for "whatever Spark Kiln runs".
_NATIVE = re.compile(r"^(kiln|apache-spark)-\d+\.\d+\.\d+$")


@cache
def installed_spark_version() -> str:
    """The version of the Spark every cluster runs (pyspark's, read without importing it)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pyspark")
    except PackageNotFoundError:
        return "unknown"


def _name(key: str, label: str) -> str:
    scala = key.rsplit("scala", 1)[-1]
    return f"{label} (Kiln: Apache Spark {installed_spark_version()}, Scala {scala})"


def list_spark_versions() -> list[dict[str, str]]:
    """`clusters/spark-versions` entries: the accepted keys, named with the Spark that runs."""
    versions = [{"key": key, "name": _name(key, label)} for key, label in RUNTIME_KEYS]
    native = f"kiln-{installed_spark_version()}"
    versions.append({"key": native, "name": f"Apache Spark {installed_spark_version()} (Kiln)"})
    return versions


def validate(key: object) -> str:
    """A spark_version a cluster may name, or a 400."""
    if not isinstance(key, str) or not key.strip():
        raise InvalidParameterValue("spark_version: a Databricks runtime key is required.")
    key = key.strip()
    if _KEY.match(key) or _NATIVE.match(key):
        return key
    raise InvalidParameterValue(
        f"spark_version: Invalid spark version {key}. Use a key from clusters/spark-versions, "
        "such as 16.4.x-scala2.13."
    )
