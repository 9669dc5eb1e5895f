"""The node-type catalogue: the sizes (cores, memory) a driver or worker node can have.

Configured in `settings.compute.node_types`; by default a few sizes that fit this machine,
from one core up to all of its cores, so a cluster never asks for more than the host has.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass

from kiln.errors import InvalidParameterValue
from kiln.settings import ComputeSettings

__all__ = ["NodeType", "NodeTypeCatalogue", "default_node_types"]

# Memory each core of a default node type gets, at most.
_MB_PER_CORE = 4096


@dataclass(frozen=True, slots=True)
class NodeType:
    """A node size."""

    node_type_id: str
    num_cores: int
    memory_mb: int
    description: str
    # The local disk a node's scratch space lives on (the host's), in GB.
    local_disk_gb: int = 0

    def to_wire(self) -> dict[str, object]:
        """Databricks' `NodeType` shape (`clusters/list-node-types`)."""
        return {
            "node_type_id": self.node_type_id,
            "instance_type_id": self.node_type_id,
            "memory_mb": self.memory_mb,
            "num_cores": float(self.num_cores),
            "num_gpus": 0,
            "description": self.description,
            "category": "General Purpose",
            "is_deprecated": False,
            "is_hidden": False,
            "support_cluster_tags": True,
            "support_port_forwarding": True,
            "photon_driver_capable": False,
            "photon_worker_capable": False,
            "node_instance_type": {
                "instance_type_id": self.node_type_id,
                "local_disks": 1 if self.local_disk_gb else 0,
                "local_disk_size_gb": self.local_disk_gb,
            },
        }


def _machine() -> tuple[int, int, int]:
    import psutil

    cores = os.cpu_count() or 1
    memory_mb = int(psutil.virtual_memory().total // (1024 * 1024))
    disk_gb = int(shutil.disk_usage(os.getcwd()).total // 10**9)
    return cores, memory_mb, disk_gb


def default_node_types(cores: int, memory_mb: int, disk_gb: int = 0) -> list[NodeType]:
    """Sizes of 1, 2, 4, ... cores up to `cores`, each with memory in proportion (≤ 4 GiB/core)."""
    per_core = max(512, min(_MB_PER_CORE, memory_mb // max(cores, 1)))
    sizes: list[int] = []
    size = 1
    while size < cores:
        sizes.append(size)
        size *= 2
    sizes.append(cores)
    return [
        NodeType(
            node_type_id=f"kiln.local.{n}x",
            num_cores=n,
            memory_mb=n * per_core,
            description=f"{n} core{'s' if n > 1 else ''}, {n * per_core // 1024} GiB "
            "(processes on this host)",
            local_disk_gb=disk_gb,
        )
        for n in sizes
    ]


class NodeTypeCatalogue:
    """The node types clusters may name, in display order (smallest first)."""

    def __init__(self, node_types: list[NodeType]) -> None:
        if not node_types:
            raise ValueError("the node-type catalogue is empty")
        self.node_types = sorted(node_types, key=lambda n: (n.num_cores, n.memory_mb))
        self._by_id = {n.node_type_id: n for n in self.node_types}

    @classmethod
    def from_settings(cls, settings: ComputeSettings) -> NodeTypeCatalogue:
        """The configured catalogue, or the machine-derived default."""
        cores, memory_mb, disk_gb = _machine()
        if settings.node_types:
            return cls(
                [
                    NodeType(
                        n.node_type_id,
                        n.num_cores,
                        n.memory_mb,
                        n.description or f"{n.num_cores} cores, {n.memory_mb} MB",
                        disk_gb,
                    )
                    for n in settings.node_types
                ]
            )
        return cls(default_node_types(cores, memory_mb, disk_gb))

    @property
    def default(self) -> NodeType:
        """The node type a cluster gets when it names none: the smallest."""
        return self.node_types[0]

    def get(self, node_type_id: str, *, field: str = "node_type_id") -> NodeType:
        """The node type called `node_type_id`, or a 400 naming `field`."""
        node = self._by_id.get(node_type_id)
        if node is None:
            known = ", ".join(self._by_id)
            raise InvalidParameterValue(
                f"{field}: Node type {node_type_id} is not supported. Supported node types: "
                f"{known}."
            )
        return node
