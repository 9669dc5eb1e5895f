"""Instance Pools API wire shapes (Databricks' `/api/2.0/instance-pools/...` field names).

Requests are typed loosely (counts as `Any`) so that `kiln.compute.pools.spec` names the field
it refuses with Databricks' error code rather than a generic validation error; cloud
attributes are accepted and returned unchanged.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

__all__ = [
    "CreateInstancePoolRequest",
    "CreateInstancePoolResponse",
    "EditInstancePoolRequest",
    "GetInstancePool",
    "InstancePoolIdRequest",
    "InstancePoolStats",
    "InstancePoolStatus",
    "ListInstancePools",
]


class CreateInstancePoolRequest(BaseModel):
    """`instance-pools/create`."""

    model_config = ConfigDict(extra="allow")

    instance_pool_name: Any = None
    node_type_id: Any = None
    min_idle_instances: Any = None
    max_capacity: Any = None
    idle_instance_autotermination_minutes: Any = None
    preloaded_spark_versions: Any = None
    custom_tags: Any = None

    def body(self) -> dict[str, Any]:
        """The request as the domain validates it (unset and null fields dropped)."""
        return self.model_dump(exclude_none=True)


class EditInstancePoolRequest(CreateInstancePoolRequest):
    """`instance-pools/edit`."""

    instance_pool_id: Any = None


class InstancePoolIdRequest(BaseModel):
    """`instance-pools/delete`."""

    instance_pool_id: Any = None


class CreateInstancePoolResponse(BaseModel):
    instance_pool_id: str


class InstancePoolStats(BaseModel):
    used_count: int = 0
    idle_count: int = 0
    pending_used_count: int = 0
    pending_idle_count: int = 0


class InstancePoolStatus(BaseModel):
    pending_instance_errors: list[dict[str, str]] = []


class GetInstancePool(BaseModel):
    """`GetInstancePool` / `InstancePoolAndStats`."""

    model_config = ConfigDict(extra="allow")

    instance_pool_id: str
    instance_pool_name: str
    node_type_id: str
    min_idle_instances: int
    max_capacity: int | None = None
    idle_instance_autotermination_minutes: int
    preloaded_spark_versions: list[str] = []
    custom_tags: dict[str, str] = {}
    default_tags: dict[str, str] = {}
    state: str
    stats: InstancePoolStats
    status: InstancePoolStatus


class ListInstancePools(BaseModel):
    instance_pools: list[GetInstancePool] = []
