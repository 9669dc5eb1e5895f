"""`PooledBackend`: the backend clusters see, wrapping the configured one.

A cluster that names an instance pool starts from the pool (a warm driver attached, or a cold
start inside the pool's capacity, queued while the pool is full); every stop of a cluster
gives its pool instances back. Everything else passes straight through, so the supervisor,
the reconciler and the API need not know pools exist.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from kiln.compute.backends.base import (
    ClusterBackend,
    InstanceSpec,
    LaunchSpec,
    Probe,
    Reporter,
    RuntimeHandle,
)
from kiln.compute.spec import ClusterSpec

if TYPE_CHECKING:
    from kiln.compute.pools.service import InstancePools

__all__ = ["PooledBackend"]


class PooledBackend(ClusterBackend):
    """The configured backend, with pool clusters started from (and returned to) their pool."""

    def __init__(self, inner: ClusterBackend, pools: InstancePools) -> None:
        super().__init__(inner.context)
        self.inner = inner
        self.pools = pools
        self.name = inner.name

    async def start(self, launch: LaunchSpec, reporter: Reporter) -> RuntimeHandle:
        """From the pool when the cluster names one; otherwise the backend's cold start."""
        if launch.spec.instance_pool_id:
            return await self.pools.acquire(launch, reporter)
        return await self.inner.start(launch, reporter)

    async def stop(self, cluster_id: str, handle: RuntimeHandle | None) -> None:
        """Stop the cluster's processes, then retire its pool instances and free capacity."""
        await self.inner.stop(cluster_id, handle)
        await self.pools.release(cluster_id)

    async def resize(
        self, handle: RuntimeHandle, launch: LaunchSpec, workers: int, reporter: Reporter
    ) -> RuntimeHandle:
        """Passed through."""
        return await self.inner.resize(handle, launch, workers, reporter)

    def resizable(self, handle: RuntimeHandle, spec: ClusterSpec) -> bool:
        """Passed through."""
        return self.inner.resizable(handle, spec)

    async def probe(self, handle: RuntimeHandle) -> Probe:
        """Passed through."""
        return await self.inner.probe(handle)

    async def adopt(self, handle: RuntimeHandle) -> bool:
        """Passed through."""
        return await self.inner.adopt(handle)

    async def smoke_job(self, handle: RuntimeHandle, tasks: int, task_ms: int) -> dict[str, Any]:
        """Passed through."""
        return await self.inner.smoke_job(handle, tasks, task_ms)

    def proxy_ports(self, handle: RuntimeHandle) -> set[int]:
        """Passed through."""
        return self.inner.proxy_ports(handle)

    def log_files(self, cluster_id: str, handle: RuntimeHandle | None) -> list[tuple[str, Path]]:
        """A pool cluster's driver logs live in its instance's folder."""
        instance_id = handle.data.get("instance_id") if handle is not None else None
        found = self.inner.log_files(cluster_id, handle)
        if isinstance(instance_id, str):
            found += self.inner.log_files(instance_id, handle)
        return found

    async def forget(self, cluster_id: str) -> None:
        """Passed through."""
        await self.inner.forget(cluster_id)

    async def start_instance(self, instance: InstanceSpec, reporter: Reporter) -> RuntimeHandle:
        """Passed through."""
        return await self.inner.start_instance(instance, reporter)

    async def attach(
        self, instance: RuntimeHandle, launch: LaunchSpec, reporter: Reporter
    ) -> RuntimeHandle:
        """Passed through."""
        return await self.inner.attach(instance, launch, reporter)

    async def close(self) -> None:
        """Passed through."""
        await self.inner.close()
