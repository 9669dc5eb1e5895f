"""Clusters API wire shapes (Databricks' `/api/2.x/clusters/...` field names).

Requests are typed loosely where Databricks is lenient (extra attributes such as
`aws_attributes` are accepted and returned unchanged); `kiln.compute.spec` does the semantic
validation and names the field it refuses.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from kiln.compute import ClusterView, EventPage
from kiln.store.models import ClusterEvent as ClusterEventRow
from kiln.store.models import to_epoch_ms

__all__ = [
    "ChangeOwnerRequest",
    "ClusterDetails",
    "ClusterEvent",
    "ClusterIdRequest",
    "ClusterSpecRequest",
    "CreateClusterResponse",
    "EditClusterRequest",
    "GetEventsRequest",
    "GetEventsResponse",
    "ListClustersResponse",
    "ListNodeTypesResponse",
    "ResizeClusterRequest",
    "RestartClusterRequest",
    "SparkVersionsResponse",
    "UpdateClusterRequest",
]


class ClusterSpecRequest(BaseModel):
    """`clusters/create` (and the spec part of `clusters/edit`)."""

    model_config = ConfigDict(extra="allow")

    cluster_name: str | None = None
    spark_version: str | None = None
    node_type_id: str | None = None
    driver_node_type_id: str | None = None
    num_workers: int | None = None
    autoscale: dict[str, Any] | None = None
    autotermination_minutes: int | None = None
    spark_conf: dict[str, Any] | None = None
    spark_env_vars: dict[str, Any] | None = None
    custom_tags: dict[str, Any] | None = None
    cluster_log_conf: dict[str, Any] | None = None
    init_scripts: list[dict[str, Any]] | None = None
    data_security_mode: str | None = None
    single_user_name: str | None = None
    kind: str | None = None
    is_single_node: bool | None = None
    runtime_engine: str | None = None
    instance_pool_id: str | None = None
    driver_instance_pool_id: str | None = None
    policy_id: str | None = None
    ssh_public_keys: list[str] | None = None
    cluster_source: str | None = None
    apply_policy_default_values: bool | None = None

    def body(self) -> dict[str, Any]:
        """The request as the domain validates it (unset and null fields dropped)."""
        return self.model_dump(exclude_none=True)


class EditClusterRequest(ClusterSpecRequest):
    cluster_id: str


class ClusterIdRequest(BaseModel):
    cluster_id: str


class UpdateClusterRequest(ClusterIdRequest):
    """`clusters/update`: the mask and the partial cluster (validated by the domain)."""

    update_mask: Any = None
    cluster: Any = None


class RestartClusterRequest(ClusterIdRequest):
    restart_user: str | None = None


class ResizeClusterRequest(ClusterIdRequest):
    num_workers: int | None = None
    autoscale: dict[str, Any] | None = None


class ChangeOwnerRequest(ClusterIdRequest):
    owner_username: str


class GetEventsRequest(BaseModel):
    """`clusters/events`: both pagination styles (offset/limit and page_token/page_size)."""

    model_config = ConfigDict(extra="allow")

    cluster_id: str
    start_time: int | None = None
    end_time: int | None = None
    event_types: list[str] | None = None
    order: str | None = None
    offset: int | None = None
    limit: int | None = None
    page_size: int | None = None
    page_token: str | None = None

    def body(self) -> dict[str, Any]:
        """The request as the domain validates it."""
        return self.model_dump(exclude_none=True)


class CreateClusterResponse(BaseModel):
    cluster_id: str


class ClusterDetails(BaseModel):
    """`ClusterDetails`: the spec as given, plus state, nodes and times."""

    model_config = ConfigDict(extra="allow")

    cluster_id: str
    cluster_name: str | None = None
    spark_version: str | None = None
    state: str
    state_message: str | None = None
    creator_user_name: str | None = None
    cluster_source: str | None = None
    start_time: int | None = None
    terminated_time: int | None = None
    last_restarted_time: int | None = None
    last_state_loss_time: int | None = None
    termination_reason: dict[str, Any] | None = None
    default_tags: dict[str, str] | None = None
    driver: dict[str, Any] | None = None
    executors: list[dict[str, Any]] | None = None
    spark_context_id: int | None = None
    cluster_cores: float | None = None
    cluster_memory_mb: int | None = None
    cluster_log_status: dict[str, Any] | None = None
    spec: dict[str, Any] | None = None

    @classmethod
    def of(cls, view: ClusterView) -> ClusterDetails:
        """The wire form of one cluster."""
        row = view.row
        fields: dict[str, Any] = dict(view.spec)

        def ms(value: Any) -> int | None:
            return to_epoch_ms(value) if value is not None else None

        running = view.running
        fields.update(
            cluster_id=row.cluster_id,
            cluster_name=row.cluster_name,
            state=row.state,
            state_message=row.state_message,
            creator_user_name=row.creator_user_name or None,
            cluster_source=row.cluster_source,
            start_time=ms(row.start_time),
            terminated_time=ms(row.terminated_time),
            last_restarted_time=ms(row.last_restarted_time),
            last_state_loss_time=ms(row.last_state_loss_time),
            termination_reason=row.termination_reason,
            default_tags=view.default_tags,
            driver=view.driver_node(),
            executors=view.executor_nodes() if running else None,
            spark_context_id=row.spark_context_id if running else None,
            cluster_cores=view.cluster_cores,
            cluster_memory_mb=view.cluster_memory_mb,
            cluster_log_status=row.log_status,
            spec=dict(view.spec),
        )
        return cls(**fields)


class ListClustersResponse(BaseModel):
    clusters: list[ClusterDetails]
    next_page_token: str | None = None
    prev_page_token: str | None = None


class ClusterEvent(BaseModel):
    cluster_id: str
    timestamp: int
    type: str
    details: dict[str, Any]

    @classmethod
    def of(cls, row: ClusterEventRow) -> ClusterEvent:
        """The wire form of one event."""
        return cls(
            cluster_id=row.cluster_id,
            timestamp=to_epoch_ms(row.timestamp),
            type=row.type,
            details=row.details or {},
        )


class GetEventsResponse(BaseModel):
    events: list[ClusterEvent]
    next_page: dict[str, Any] | None = None
    next_page_token: str | None = None
    prev_page_token: str | None = None
    total_count: int

    @classmethod
    def of(cls, page: EventPage) -> GetEventsResponse:
        """The wire form of one page of events."""
        return cls(
            events=[ClusterEvent.of(e) for e in page.events],
            next_page=page.next_page,
            next_page_token=page.next_page_token or None,
            prev_page_token=page.prev_page_token or None,
            total_count=page.total_count,
        )


class ListNodeTypesResponse(BaseModel):
    node_types: list[dict[str, Any]]


class SparkVersionsResponse(BaseModel):
    versions: list[dict[str, str]]
