"""Cluster libraries: the Libraries API and the per-cluster environments they install into.

Invariants: a library's `status` changes only through `statuses.transition`; every library
path is inside Kiln's stores (workspace, DBFS, volumes); a cluster's environment is rebuilt on
each start with every library it still has, and the driver's Python code and every executor
run on it (`PYSPARK_PYTHON`).
"""

from kiln.compute.libraries.service import (
    all_cluster_statuses,
    cluster_status,
    install,
    install_for_all_clusters,
    libraries_for_all_clusters,
    uninstall,
    uninstall_for_all_clusters,
)
from kiln.compute.libraries.spec import LibrarySpec, parse_libraries, parse_library
from kiln.compute.libraries.statuses import LibraryStatus

__all__ = [
    "LibrarySpec",
    "LibraryStatus",
    "all_cluster_statuses",
    "cluster_status",
    "install",
    "install_for_all_clusters",
    "libraries_for_all_clusters",
    "parse_libraries",
    "parse_library",
    "uninstall",
    "uninstall_for_all_clusters",
]
