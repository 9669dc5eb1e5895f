"""Clusters API, under both /api/2.0/clusters and /api/2.1/clusters."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query

from kiln.compute import clusters, spark_versions
from kiln.server.deps import CurrentPrincipal, Session, State
from kiln.server.schemas.clusters import (
    ChangeOwnerRequest,
    ClusterDetails,
    ClusterIdRequest,
    ClusterSpecRequest,
    CreateClusterResponse,
    EditClusterRequest,
    GetEventsRequest,
    GetEventsResponse,
    ListClustersResponse,
    ListNodeTypesResponse,
    ResizeClusterRequest,
    RestartClusterRequest,
    SparkVersionsResponse,
    UpdateClusterRequest,
)

router = APIRouter(tags=["clusters"])

# Also served under /api/2.1/clusters (an alias, see kiln.server.routers.ALIASES).
PREFIX = "/api/2.0/clusters"
Empty = dict[str, Any]


async def create(
    body: ClusterSpecRequest, session: Session, state: State, me: CurrentPrincipal
) -> CreateClusterResponse:
    """Create a cluster; it starts in the background (PENDING, then RUNNING)."""
    row = await clusters.create_cluster(session, state.compute, me, body.body())
    return CreateClusterResponse(cluster_id=row.cluster_id)


async def edit(
    body: EditClusterRequest, session: Session, state: State, me: CurrentPrincipal
) -> Empty:
    """Replace a cluster's configuration (a RUNNING cluster restarts to apply it)."""
    await clusters.edit_cluster(session, state.compute, me, body.body())
    return {}


async def update(
    body: UpdateClusterRequest, session: Session, state: State, me: CurrentPrincipal
) -> Empty:
    """Change the attributes `update_mask` names (a RUNNING cluster resizes or restarts)."""
    await clusters.update_cluster(
        session, state.compute, me, body.cluster_id, body.update_mask, body.cluster
    )
    return {}


async def start(
    body: ClusterIdRequest, session: Session, state: State, me: CurrentPrincipal
) -> Empty:
    """Start a terminated cluster."""
    await clusters.start_cluster(session, state.compute, me, body.cluster_id)
    return {}


async def restart(
    body: RestartClusterRequest, session: Session, state: State, me: CurrentPrincipal
) -> Empty:
    """Restart a running cluster."""
    await clusters.restart_cluster(session, state.compute, me, body.cluster_id, body.restart_user)
    return {}


async def resize(
    body: ResizeClusterRequest, session: Session, state: State, me: CurrentPrincipal
) -> Empty:
    """Change a running cluster's worker count or autoscale bounds."""
    await clusters.resize_cluster(
        session, state.compute, me, body.cluster_id, body.num_workers, body.autoscale
    )
    return {}


async def delete(
    body: ClusterIdRequest, session: Session, state: State, me: CurrentPrincipal
) -> Empty:
    """Terminate a cluster (its configuration is kept)."""
    await clusters.terminate_cluster(session, state.compute, me, body.cluster_id)
    return {}


async def permanent_delete(
    body: ClusterIdRequest, session: Session, state: State, me: CurrentPrincipal
) -> Empty:
    """Terminate a cluster and remove it."""
    await clusters.permanent_delete(session, state.compute, me, body.cluster_id)
    return {}


async def pin(body: ClusterIdRequest, session: Session, me: CurrentPrincipal) -> Empty:
    """Pin a cluster to the cluster list (admins only)."""
    await clusters.pin(session, me, body.cluster_id, pinned=True)
    return {}


async def unpin(body: ClusterIdRequest, session: Session, me: CurrentPrincipal) -> Empty:
    """Unpin a cluster (admins only)."""
    await clusters.pin(session, me, body.cluster_id, pinned=False)
    return {}


async def change_owner(body: ChangeOwnerRequest, session: Session, me: CurrentPrincipal) -> Empty:
    """Give a terminated cluster a new owner (admins only)."""
    await clusters.change_owner(session, me, body.cluster_id, body.owner_username)
    return {}


async def get(
    cluster_id: str, session: Session, state: State, me: CurrentPrincipal
) -> ClusterDetails:
    """One cluster, with its driver and executors while it runs."""
    return ClusterDetails.of(await clusters.get_cluster(session, state.compute, cluster_id))


async def list_(
    session: Session,
    state: State,
    me: CurrentPrincipal,
    cluster_states: Annotated[list[str] | None, Query(alias="filter_by.cluster_states")] = None,
    cluster_sources: Annotated[list[str] | None, Query(alias="filter_by.cluster_sources")] = None,
    is_pinned: Annotated[bool | None, Query(alias="filter_by.is_pinned")] = None,
    policy_id: Annotated[str | None, Query(alias="filter_by.policy_id")] = None,
    sort_field: Annotated[str | None, Query(alias="sort_by.field")] = None,
    sort_direction: Annotated[str | None, Query(alias="sort_by.direction")] = None,
    page_size: int | None = None,
    page_token: str | None = None,
) -> ListClustersResponse:
    """Clusters, filtered and paginated as API 2.1 does (2.0 clients get them all)."""
    views, next_token, prev_token = await clusters.list_clusters(
        session,
        state.compute,
        clusters.ListFilter(
            states=tuple(cluster_states or ()),
            sources=tuple(cluster_sources or ()),
            is_pinned=is_pinned,
            policy_id=policy_id,
            sort_field=sort_field or "DEFAULT",
            sort_direction=sort_direction or "ASC",
            page_size=page_size,
            page_token=page_token,
        ),
    )
    return ListClustersResponse(
        clusters=[ClusterDetails.of(v) for v in views],
        next_page_token=next_token or None,
        prev_page_token=prev_token or None,
    )


async def events(
    body: GetEventsRequest, session: Session, me: CurrentPrincipal
) -> GetEventsResponse:
    """A page of a cluster's events, newest first unless asked otherwise."""
    return GetEventsResponse.of(await clusters.cluster_events(session, body.body()))


async def list_node_types(state: State, me: CurrentPrincipal) -> ListNodeTypesResponse:
    """The node types clusters may use."""
    return ListNodeTypesResponse(
        node_types=[n.to_wire() for n in state.compute.catalogue.node_types]
    )


async def list_spark_versions(me: CurrentPrincipal) -> SparkVersionsResponse:
    """The runtime keys clusters may name, with the Spark that actually runs."""
    return SparkVersionsResponse(versions=spark_versions.list_spark_versions())


async def list_zones(me: CurrentPrincipal) -> dict[str, Any]:
    """One zone: this host."""
    return {"zones": ["local"], "default_zone": "local"}


_POSTS: dict[str, Callable[..., Any]] = {
    "create": create,
    "edit": edit,
    "update": update,
    "start": start,
    "restart": restart,
    "resize": resize,
    "delete": delete,
    "permanent-delete": permanent_delete,
    "pin": pin,
    "unpin": unpin,
    "change-owner": change_owner,
    "events": events,
}
_GETS: dict[str, Callable[..., Any]] = {
    "get": get,
    "list": list_,
    "list-node-types": list_node_types,
    "spark-versions": list_spark_versions,
    "list-zones": list_zones,
}

for _method, _table in (("POST", _POSTS), ("GET", _GETS)):
    for _name, _endpoint in _table.items():
        router.add_api_route(
            f"{PREFIX}/{_name}",
            _endpoint,
            methods=[_method],
            response_model_exclude_none=True,
            operation_id=f"clusters_{_name.replace('-', '_')}",
        )
