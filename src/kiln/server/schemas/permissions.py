"""Permissions API wire shapes for clusters (`/api/2.0/permissions/clusters/...`)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

__all__ = [
    "ClusterPermissions",
    "ClusterPermissionsRequest",
    "GetClusterPermissionLevelsResponse",
]


class ClusterPermissionsRequest(BaseModel):
    """PUT/PATCH body: the grants (validated by `kiln.compute.permissions`, naming the entry)."""

    model_config = ConfigDict(extra="ignore")

    access_control_list: Any = None


class ClusterPermissions(BaseModel):
    """`ClusterPermissions`."""

    object_id: str
    object_type: str
    access_control_list: list[dict[str, Any]]


class GetClusterPermissionLevelsResponse(BaseModel):
    """`GetClusterPermissionLevelsResponse`."""

    permission_levels: list[dict[str, str]]
