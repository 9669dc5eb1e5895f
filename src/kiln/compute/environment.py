"""Which Python a cluster's user code runs in, decided in one place.

The driver's REPLs and every executor run `PythonEnvironment.python` (`PYSPARK_PYTHON`).
By default that is the interpreter Kiln itself runs on; the libraries service replaces the
provider with one that builds a per-cluster virtual environment (installed again on each
start), without the backend or the API knowing.
"""

from __future__ import annotations

import sys
from typing import Protocol

from kiln.compute.backends.base import PythonEnvironment
from kiln.compute.spec import ClusterSpec

__all__ = ["DefaultEnvironment", "EnvironmentProvider"]


class EnvironmentProvider(Protocol):
    """Prepares the Python environment of a cluster that is about to start."""

    async def prepare(self, cluster_id: str, spec: ClusterSpec) -> PythonEnvironment:
        """The interpreter and variables the cluster's user code gets."""
        ...


class DefaultEnvironment:
    """Every cluster runs user code on Kiln's own interpreter."""

    async def prepare(self, cluster_id: str, spec: ClusterSpec) -> PythonEnvironment:
        """Kiln's interpreter, no extra variables."""
        return PythonEnvironment(python=sys.executable)
