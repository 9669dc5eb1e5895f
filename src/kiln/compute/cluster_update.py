"""`clusters/update`: change some of a cluster's attributes, named by an `update_mask`.

The mask is a comma-separated list of field paths relative to the cluster (`num_workers`,
`spark_conf`, `autoscale.max_workers`), or `*` for a full replacement (google.aip.dev/161): a
path named in the mask takes its value from the request's `cluster`, and one the request
leaves out is cleared. Maps and lists (`spark_conf`, `custom_tags`, `init_scripts`) are
replaced whole. A RUNNING cluster is resized when only its size changed, keeps running when
only what needs no restart changed (name, autotermination, tags), and restarts otherwise; a
TERMINATED cluster keeps the new attributes for its next start.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from kiln.errors import InvalidParameterValue

__all__ = [
    "NO_RESTART_FIELDS",
    "SIZE_FIELDS",
    "UPDATABLE_FIELDS",
    "UpdatePlan",
    "apply_mask",
    "parse_update_mask",
    "plan_update",
]

# `UpdateClusterResource`'s fields (databricks-sdk), the ones Kiln keeps.
UPDATABLE_FIELDS = frozenset(
    {
        "autoscale",
        "autotermination_minutes",
        "aws_attributes",
        "azure_attributes",
        "cluster_log_conf",
        "cluster_name",
        "custom_tags",
        "data_security_mode",
        "dependency_mode",
        "docker_image",
        "driver_instance_pool_id",
        "driver_node_type_id",
        "enable_elastic_disk",
        "enable_local_disk_encryption",
        "gcp_attributes",
        "init_scripts",
        "instance_pool_id",
        "is_single_node",
        "kind",
        "node_type_id",
        "num_workers",
        "policy_id",
        "remote_disk_throughput",
        "runtime_engine",
        "single_user_name",
        "spark_conf",
        "spark_env_vars",
        "spark_version",
        "ssh_public_keys",
        "total_initial_remote_disk_size",
        "use_ml_runtime",
        "workload_type",
    }
)
# Fields that are messages (sub-fields may be named); every other field is replaced whole.
_MESSAGES: dict[str, frozenset[str] | None] = {
    "autoscale": frozenset({"min_workers", "max_workers"}),
    "cluster_log_conf": frozenset({"dbfs", "volumes", "s3"}),
    # Cloud and image attributes are recorded, never interpreted: any sub-field goes.
    "aws_attributes": None,
    "azure_attributes": None,
    "gcp_attributes": None,
    "docker_image": None,
    "workload_type": None,
}
SIZE_FIELDS = frozenset({"num_workers", "autoscale"})
# What a running cluster takes without a restart: nothing of its processes depends on them.
NO_RESTART_FIELDS = frozenset({"cluster_name", "autotermination_minutes", "custom_tags"})


def parse_update_mask(mask: object) -> tuple[tuple[str, ...], ...] | None:
    """The mask's field paths (each split at dots), or None for `*`; a 400 naming a bad one."""
    if not isinstance(mask, str) or not mask.strip():
        raise InvalidParameterValue(
            "update_mask is required: a comma-separated list of cluster fields, or *."
        )
    if mask.strip() == "*":
        return None
    paths: list[tuple[str, ...]] = []
    for raw in mask.split(","):
        text = raw.strip()
        parts = tuple(text.split("."))
        if not text or any(not p for p in parts):
            raise InvalidParameterValue(f"update_mask: {raw!r} is not a field path.")
        top = parts[0]
        if top not in UPDATABLE_FIELDS:
            raise InvalidParameterValue(
                f"update_mask: {top} is not a field of a cluster that can be updated."
            )
        if len(parts) > 1:
            if top not in _MESSAGES:
                raise InvalidParameterValue(
                    f"update_mask: {text}: {top} can only be replaced as a whole."
                )
            allowed = _MESSAGES[top]
            if allowed is not None and (len(parts) > 2 or parts[1] not in allowed):
                raise InvalidParameterValue(f"update_mask: {text} is not a field of {top}.")
        if parts in paths:
            raise InvalidParameterValue(f"update_mask: {text} is named twice.")
        paths.append(parts)
    for path in paths:
        if len(path) > 1 and (path[0],) in paths:
            raise InvalidParameterValue(
                f"update_mask: {'.'.join(path)} overlaps {path[0]}, which is named whole."
            )
    return tuple(paths)


def _lookup(source: dict[str, Any], path: tuple[str, ...]) -> tuple[bool, Any]:
    node: Any = source
    for part in path:
        if not isinstance(node, dict) or part not in node or node[part] is None:
            return False, None
        node = node[part]
    return True, node


def apply_mask(
    current: dict[str, Any],
    cluster: dict[str, Any],
    paths: tuple[tuple[str, ...], ...] | None,
    workers_now: int,
) -> dict[str, Any]:
    """The cluster's new create-style body: `current` (its stored spec) with the masked paths
    taken from `cluster` (cleared where `cluster` leaves them out)."""
    if paths is None:
        return {k: v for k, v in cluster.items() if v is not None}
    out = copy.deepcopy(current)
    for path in paths:
        found, value = _lookup(cluster, path)
        parent = out
        for part in path[:-1]:
            child = parent.get(part)
            if not isinstance(child, dict):
                child = {}
                parent[part] = child
            parent = child
        if found:
            parent[path[-1]] = copy.deepcopy(value)
        else:
            parent.pop(path[-1], None)
    named = {p[0] for p in paths}
    # One size or the other: the one the mask names wins.
    if "num_workers" in named and "autoscale" not in named and "num_workers" in out:
        out.pop("autoscale", None)
    if "autoscale" in named and "num_workers" not in named:
        if "autoscale" in out:
            out.pop("num_workers", None)
        elif "num_workers" not in out:
            out["num_workers"] = workers_now
    return out


@dataclass(frozen=True, slots=True)
class UpdatePlan:
    """What an update does to a RUNNING cluster."""

    changed: frozenset[str]
    restart: bool
    resize: bool


def plan_update(before: dict[str, Any], after: dict[str, Any]) -> UpdatePlan:
    """Compare two stored specs: which fields changed, and whether a running cluster restarts
    or resizes for them."""
    changed = frozenset(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    restart = bool(changed - NO_RESTART_FIELDS - SIZE_FIELDS)
    resize = not restart and bool(changed & SIZE_FIELDS)
    return UpdatePlan(changed=changed, restart=restart, resize=resize)
