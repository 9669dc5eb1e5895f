"""An instance pool's configuration: validation of create/edit requests and the wire view.

Pure functions over plain data, so every bad-input rule is unit-tested without a server.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from kiln.compute import spark_versions
from kiln.compute.node_types import NodeTypeCatalogue
from kiln.errors import InvalidParameterValue

__all__ = [
    "DEFAULT_IDLE_MINUTES",
    "FAIL_FAST_CONF",
    "FAIL_FAST_TAG",
    "InstanceState",
    "PoolSpec",
    "PoolState",
    "fail_fast",
    "parse_pool_spec",
]

MAX_NAME = 100
MAX_TAGS = 45
# Databricks' documented ceiling for idle_instance_autotermination_minutes.
MAX_IDLE_MINUTES = 10_000
DEFAULT_IDLE_MINUTES = 60
MAX_CAPACITY_LIMIT = 10_000
# The per-cluster switch back to Databricks' behaviour when a pool is full (fail the cluster
# with INSTANCE_POOL_MAX_CAPACITY_REACHED instead of queueing it): either of these "true".
FAIL_FAST_CONF = "kiln.pool.failFast"
FAIL_FAST_TAG = "KilnPoolFailFast"
# Accepted and returned unchanged: cloud attributes mean nothing on a local host.
_RECORDED = (
    "aws_attributes",
    "azure_attributes",
    "gcp_attributes",
    "disk_spec",
    "enable_elastic_disk",
    "preloaded_docker_images",
    "node_type_flexibility",
    "remote_disk_throughput",
    "total_initial_remote_disk_size",
)


class PoolState(StrEnum):
    """`InstancePoolState`."""

    ACTIVE = "ACTIVE"
    STOPPED = "STOPPED"
    DELETED = "DELETED"


class InstanceState(StrEnum):
    """Where one pool instance is; the four stats count these."""

    # Starting ahead of demand (pending_idle_count).
    PENDING = "PENDING"
    # Started and free (idle_count).
    IDLE = "IDLE"
    # Reserved by a cluster that is still starting (pending_used_count).
    PENDING_USED = "PENDING_USED"
    # Part of a running cluster (used_count).
    USED = "USED"


@dataclass(frozen=True, slots=True)
class PoolSpec:
    """A validated pool configuration; `record` is what is stored and returned."""

    instance_pool_name: str
    node_type_id: str
    min_idle_instances: int
    max_capacity: int | None
    idle_instance_autotermination_minutes: int
    preloaded_spark_versions: tuple[str, ...]
    custom_tags: dict[str, str]
    record: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, record: dict[str, Any]) -> PoolSpec:
        """The spec a stored record holds (already validated when it was stored)."""
        return cls(
            instance_pool_name=str(record["instance_pool_name"]),
            node_type_id=str(record["node_type_id"]),
            min_idle_instances=int(record.get("min_idle_instances", 0)),
            max_capacity=record.get("max_capacity"),
            idle_instance_autotermination_minutes=int(
                record.get("idle_instance_autotermination_minutes", DEFAULT_IDLE_MINUTES)
            ),
            preloaded_spark_versions=tuple(record.get("preloaded_spark_versions") or ()),
            custom_tags=dict(record.get("custom_tags") or {}),
            record=dict(record),
        )

    @property
    def spark_version(self) -> str:
        """The runtime warm instances start with (the first preloaded one, else the default)."""
        if self.preloaded_spark_versions:
            return self.preloaded_spark_versions[0]
        return spark_versions.RUNTIME_KEYS[1][0]


def _count(raw: dict[str, Any], name: str, default: int | None, upper: int) -> int | None:
    value = raw.get(name)
    if value is None:
        return default
    # JSON booleans are ints in Python; Databricks refuses them as counts.
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidParameterValue(f"{name} must be an integer.")
    if value < 0:
        raise InvalidParameterValue(f"{name} must be non-negative, got {value}.")
    if value > upper:
        raise InvalidParameterValue(f"{name} must be at most {upper}, got {value}.")
    return value


def _tags(raw: object) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in raw.items()
    ):
        raise InvalidParameterValue("custom_tags must be an object of string values.")
    if len(raw) > MAX_TAGS:
        raise InvalidParameterValue(f"custom_tags: at most {MAX_TAGS} tags are allowed.")
    for key in raw:
        if not key or len(key) > 127:
            raise InvalidParameterValue(f"custom_tags: invalid tag key {key!r}.")
    return dict(raw)


def _versions(raw: object) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise InvalidParameterValue("preloaded_spark_versions must be a list of strings.")
    if len(raw) > 1:
        # Databricks: "A list containing at most one preloaded Spark image version".
        raise InvalidParameterValue("preloaded_spark_versions: at most one version is allowed.")
    found: list[str] = []
    for item in raw:
        try:
            found.append(spark_versions.validate(item))
        except InvalidParameterValue as exc:
            raise InvalidParameterValue(f"preloaded_spark_versions: {exc.message}") from None
    return tuple(found)


def parse_pool_spec(
    raw: dict[str, Any], catalogue: NodeTypeCatalogue, *, previous: PoolSpec | None = None
) -> PoolSpec:
    """Validate a create (or, with `previous`, an edit) request; a 400 naming the field."""
    name = raw.get("instance_pool_name")
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME:
        raise InvalidParameterValue(
            f"instance_pool_name must be a string of 1-{MAX_NAME} characters."
        )
    node_id = raw.get("node_type_id")
    if not isinstance(node_id, str) or not node_id:
        raise InvalidParameterValue("node_type_id is required.")
    if previous is not None and node_id != previous.node_type_id:
        raise InvalidParameterValue(
            f"node_type_id cannot be changed (the pool's is {previous.node_type_id})."
        )
    catalogue.get(node_id)
    min_idle = _count(raw, "min_idle_instances", 0, MAX_CAPACITY_LIMIT) or 0
    max_capacity = _count(raw, "max_capacity", None, MAX_CAPACITY_LIMIT)
    if max_capacity is not None and max_capacity < 1:
        raise InvalidParameterValue("max_capacity must be at least 1.")
    if max_capacity is not None and min_idle > max_capacity:
        raise InvalidParameterValue(
            f"min_idle_instances ({min_idle}) must not exceed max_capacity ({max_capacity})."
        )
    idle_minutes = _count(
        raw, "idle_instance_autotermination_minutes", DEFAULT_IDLE_MINUTES, MAX_IDLE_MINUTES
    )
    assert idle_minutes is not None
    tags = _tags(raw.get("custom_tags"))
    if previous is not None and "preloaded_spark_versions" not in raw:
        versions = previous.preloaded_spark_versions
    else:
        versions = _versions(raw.get("preloaded_spark_versions"))
    record: dict[str, Any] = {
        "instance_pool_name": name,
        "node_type_id": node_id,
        "min_idle_instances": min_idle,
        "idle_instance_autotermination_minutes": idle_minutes,
        "preloaded_spark_versions": list(versions),
        "custom_tags": tags,
    }
    if max_capacity is not None:
        record["max_capacity"] = max_capacity
    base = previous.record if previous is not None else {}
    for key in _RECORDED:
        value = raw.get(key, base.get(key))
        if value is not None:
            record[key] = value
    return PoolSpec(
        instance_pool_name=name,
        node_type_id=node_id,
        min_idle_instances=min_idle,
        max_capacity=max_capacity,
        idle_instance_autotermination_minutes=idle_minutes,
        preloaded_spark_versions=versions,
        custom_tags=tags,
        record=record,
    )


def fail_fast(spark_conf: dict[str, str], custom_tags: dict[str, str]) -> bool:
    """Whether a cluster asked for Databricks' fail-fast behaviour when its pool is full."""
    values = (spark_conf.get(FAIL_FAST_CONF), custom_tags.get(FAIL_FAST_TAG))
    return any(isinstance(v, str) and v.strip().lower() == "true" for v in values)
