"""Permissions API for clusters, under /api/2.0/permissions/clusters."""

from __future__ import annotations

from fastapi import APIRouter

from kiln.compute import permissions
from kiln.server.deps import CurrentPrincipal, Session
from kiln.server.schemas.permissions import (
    ClusterPermissions,
    ClusterPermissionsRequest,
    GetClusterPermissionLevelsResponse,
)

router = APIRouter(prefix="/api/2.0/permissions/clusters", tags=["permissions"])


@router.get("/{cluster_id}")
async def get(cluster_id: str, session: Session, me: CurrentPrincipal) -> ClusterPermissions:
    """A cluster's permissions."""
    return ClusterPermissions(**await permissions.get_permissions(session, me, cluster_id))


@router.put("/{cluster_id}")
async def set_(
    cluster_id: str, body: ClusterPermissionsRequest, session: Session, me: CurrentPrincipal
) -> ClusterPermissions:
    """Replace a cluster's direct grants."""
    result = await permissions.change_permissions(
        session, me, cluster_id, body.access_control_list, replace=True
    )
    return ClusterPermissions(**result)


@router.patch("/{cluster_id}")
async def update(
    cluster_id: str, body: ClusterPermissionsRequest, session: Session, me: CurrentPrincipal
) -> ClusterPermissions:
    """Add to (or change) a cluster's direct grants."""
    result = await permissions.change_permissions(
        session, me, cluster_id, body.access_control_list, replace=False
    )
    return ClusterPermissions(**result)


@router.get("/{cluster_id}/permissionLevels")
async def levels(
    cluster_id: str, session: Session, me: CurrentPrincipal
) -> GetClusterPermissionLevelsResponse:
    """The levels a cluster's permissions can take."""
    return GetClusterPermissionLevelsResponse(
        permission_levels=await permissions.get_permission_levels(session, me, cluster_id)
    )
