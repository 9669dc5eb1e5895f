"""What `clusters/get` and `clusters/list` show: a cluster row with its runtime record and
the driver's latest status, and the figures Databricks derives from them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kiln.compute.backends.base import DriverStatus
from kiln.compute.node_types import NodeTypeCatalogue
from kiln.compute.states import State
from kiln.store.models import Cluster, ClusterRuntime, to_epoch_ms

__all__ = ["ClusterView"]


def _spark_time_ms(value: object) -> int | None:
    # Spark's REST API writes times as 2026-11-21T00:01:02.123GMT.
    if not isinstance(value, str):
        return None
    try:
        return to_epoch_ms(datetime.fromisoformat(value.replace("GMT", "+00:00")))
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class ClusterView:
    """One cluster as the API shows it."""

    row: Cluster
    runtime: ClusterRuntime | None
    status: DriverStatus | None
    catalogue: NodeTypeCatalogue
    bind_host: str

    @property
    def spec(self) -> dict[str, Any]:
        """The normalized create/edit request."""
        return self.row.spec

    @property
    def running(self) -> bool:
        """Whether the cluster holds processes now."""
        return self.runtime is not None and self.row.state in (
            State.RUNNING,
            State.RESIZING,
            State.RESTARTING,
        )

    def _node(self, key: str) -> tuple[int, int]:
        node_id = self.spec.get(key) or self.spec.get("node_type_id")
        try:
            node = self.catalogue.get(str(node_id)) if node_id else self.catalogue.default
        except Exception:
            return 0, 0
        return node.num_cores, node.memory_mb

    @property
    def cluster_cores(self) -> float:
        """Cores of the driver and the workers the cluster runs now."""
        driver, _ = self._node("driver_node_type_id")
        worker, _ = self._node("node_type_id")
        return float(driver + worker * self.row.target_workers)

    @property
    def cluster_memory_mb(self) -> int:
        """Memory of the driver and the workers the cluster runs now."""
        _, driver = self._node("driver_node_type_id")
        _, worker = self._node("node_type_id")
        return driver + worker * self.row.target_workers

    @property
    def default_tags(self) -> dict[str, str]:
        """The tags every cluster gets (Databricks' `default_tags`)."""
        tags = {
            "Vendor": "Databricks",
            "Creator": self.row.creator_user_name,
            "ClusterName": self.row.cluster_name,
            "ClusterId": self.row.cluster_id,
        }
        if self.spec.get("num_workers") == 0 and "autoscale" not in self.spec:
            tags["ResourceClass"] = "SingleNode"
        return tags

    def driver_node(self) -> dict[str, Any] | None:
        """The driver's `SparkNode`, while the cluster runs."""
        if not self.running or self.runtime is None:
            return None
        return {
            "node_id": f"{self.row.cluster_id}-driver",
            "instance_id": f"{self.row.cluster_id}-driver",
            "private_ip": self.bind_host,
            "host_private_ip": self.bind_host,
            "public_dns": "",
            "start_timestamp": to_epoch_ms(self.runtime.started_at),
        }

    def executor_nodes(self) -> list[dict[str, Any]]:
        """One `SparkNode` per live executor Spark reports (never the driver)."""
        if not self.running or self.status is None:
            return []
        nodes = []
        for executor in self.status.executors:
            host = str(executor.get("host_port") or self.bind_host).rsplit(":", 1)[0]
            node: dict[str, Any] = {
                "node_id": str(executor.get("id")),
                "instance_id": f"{self.row.cluster_id}-executor-{executor.get('id')}",
                "private_ip": host,
                "host_private_ip": host,
                "public_dns": "",
            }
            started = _spark_time_ms(executor.get("add_time"))
            if started is not None:
                node["start_timestamp"] = started
            nodes.append(node)
        return nodes
