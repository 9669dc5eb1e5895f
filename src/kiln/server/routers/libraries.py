"""Libraries API under /api/2.0/libraries, and Kiln's admin API for libraries installed on
every cluster under /api/2.0/kiln/libraries/all-clusters (Databricks' public API has none)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from kiln.compute import libraries
from kiln.server.deps import CurrentPrincipal, Session, State
from kiln.server.schemas.libraries import (
    AllClustersLibrariesRequest,
    AllClustersLibrariesResponse,
    ClusterLibraryStatuses,
    InstallLibrariesRequest,
    ListAllClusterLibraryStatusesResponse,
    UninstallLibrariesRequest,
)

router = APIRouter(tags=["libraries"])
PREFIX = "/api/2.0/libraries"
ALL_CLUSTERS = "/api/2.0/kiln/libraries/all-clusters"


@router.post(f"{PREFIX}/install")
async def install(
    body: InstallLibrariesRequest, session: Session, state: State, me: CurrentPrincipal
) -> dict[str, Any]:
    """Install libraries on a cluster (now if it runs, else when it starts)."""
    await libraries.install(session, state.compute, me, body.cluster_id, body.libraries)
    return {}


@router.post(f"{PREFIX}/uninstall")
async def uninstall(
    body: UninstallLibrariesRequest, session: Session, state: State, me: CurrentPrincipal
) -> dict[str, Any]:
    """Mark libraries for removal at the cluster's next restart."""
    await libraries.uninstall(session, state.compute, me, body.cluster_id, body.libraries)
    return {}


@router.get(f"{PREFIX}/cluster-status", response_model_exclude_none=True)
async def cluster_status(
    session: Session,
    me: CurrentPrincipal,
    cluster_id: Annotated[str | None, Query()] = None,
) -> ClusterLibraryStatuses:
    """The status of every library on one cluster."""
    statuses = await libraries.cluster_status(session, cluster_id)
    return ClusterLibraryStatuses(cluster_id=cluster_id or "", library_statuses=statuses)


@router.get(f"{PREFIX}/all-cluster-statuses", response_model_exclude_none=True)
async def all_cluster_statuses(
    session: Session, me: CurrentPrincipal
) -> ListAllClusterLibraryStatusesResponse:
    """The libraries of every cluster that has any."""
    rows = await libraries.all_cluster_statuses(session)
    return ListAllClusterLibraryStatusesResponse(
        statuses=[ClusterLibraryStatuses(**r) for r in rows]
    )


@router.get(ALL_CLUSTERS)
async def list_for_all_clusters(
    session: Session, me: CurrentPrincipal
) -> AllClustersLibrariesResponse:
    """The libraries every cluster installs when it starts."""
    return AllClustersLibrariesResponse(
        libraries=await libraries.libraries_for_all_clusters(session)
    )


@router.post(f"{ALL_CLUSTERS}/install")
async def install_for_all_clusters(
    body: AllClustersLibrariesRequest, session: Session, me: CurrentPrincipal
) -> dict[str, Any]:
    """Install libraries on every cluster from its next start (admins only)."""
    await libraries.install_for_all_clusters(session, me, body.libraries)
    return {}


@router.post(f"{ALL_CLUSTERS}/uninstall")
async def uninstall_for_all_clusters(
    body: AllClustersLibrariesRequest, session: Session, me: CurrentPrincipal
) -> dict[str, Any]:
    """Stop installing libraries on every cluster; each drops them at its next restart."""
    await libraries.uninstall_for_all_clusters(session, me, body.libraries)
    return {}
