"""Libraries API under /api/2.0/libraries."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from kiln.compute import libraries
from kiln.server.deps import CurrentPrincipal, Session, State
from kiln.server.schemas.libraries import (
    ClusterLibraryStatuses,
    InstallLibrariesRequest,
    ListAllClusterLibraryStatusesResponse,
    UninstallLibrariesRequest,
)

router = APIRouter(prefix="/api/2.0/libraries", tags=["libraries"])


@router.post("/install")
async def install(
    body: InstallLibrariesRequest, session: Session, state: State, me: CurrentPrincipal
) -> dict[str, Any]:
    """Install libraries on a cluster (now if it runs, else when it starts)."""
    await libraries.install(session, state.compute, me, body.cluster_id, body.libraries)
    return {}


@router.post("/uninstall")
async def uninstall(
    body: UninstallLibrariesRequest, session: Session, state: State, me: CurrentPrincipal
) -> dict[str, Any]:
    """Mark libraries for removal at the cluster's next restart."""
    await libraries.uninstall(session, state.compute, me, body.cluster_id, body.libraries)
    return {}


@router.get("/cluster-status", response_model_exclude_none=True)
async def cluster_status(
    session: Session,
    me: CurrentPrincipal,
    cluster_id: Annotated[str | None, Query()] = None,
) -> ClusterLibraryStatuses:
    """The status of every library on one cluster."""
    statuses = await libraries.cluster_status(session, cluster_id)
    return ClusterLibraryStatuses(cluster_id=cluster_id or "", library_statuses=statuses)


@router.get("/all-cluster-statuses", response_model_exclude_none=True)
async def all_cluster_statuses(
    session: Session, me: CurrentPrincipal
) -> ListAllClusterLibraryStatusesResponse:
    """The libraries of every cluster that has any."""
    rows = await libraries.all_cluster_statuses(session)
    return ListAllClusterLibraryStatusesResponse(
        statuses=[ClusterLibraryStatuses(**r) for r in rows]
    )
