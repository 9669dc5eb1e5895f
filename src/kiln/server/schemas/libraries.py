"""Libraries API wire shapes (`/api/2.0/libraries/...`, databricks-sdk's field names).

Requests are typed loosely: `kiln.compute.libraries` validates each `Library` and names the
field it refuses.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

__all__ = [
    "AllClustersLibrariesRequest",
    "AllClustersLibrariesResponse",
    "ClusterLibraryStatuses",
    "InstallLibrariesRequest",
    "ListAllClusterLibraryStatusesResponse",
    "UninstallLibrariesRequest",
]


class InstallLibrariesRequest(BaseModel):
    """`libraries/install`: a cluster and the libraries to install on it."""

    model_config = ConfigDict(extra="ignore")

    cluster_id: Any = None
    libraries: Any = None


class UninstallLibrariesRequest(InstallLibrariesRequest):
    """`libraries/uninstall`: the same shape as install."""


class ClusterLibraryStatuses(BaseModel):
    """`ClusterLibraryStatuses`: one cluster's `LibraryFullStatus` list."""

    cluster_id: str
    library_statuses: list[dict[str, Any]] = []


class ListAllClusterLibraryStatusesResponse(BaseModel):
    """`libraries/all-cluster-statuses`."""

    statuses: list[ClusterLibraryStatuses] = []


class AllClustersLibrariesRequest(BaseModel):
    """Kiln's `libraries/all-clusters/install` and `.../uninstall`: the libraries alone."""

    model_config = ConfigDict(extra="ignore")

    libraries: Any = None


class AllClustersLibrariesResponse(BaseModel):
    """Kiln's `libraries/all-clusters`: each library with `is_library_for_all_clusters`."""

    libraries: list[dict[str, Any]] = []
