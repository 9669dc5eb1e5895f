"""`Compute`: the long-lived part of the clusters subsystem, held by the running server.

It owns the node-type catalogue, the backend (imported on first use), the supervisor and the
autotermination service, the drivers' latest status, and the hook points later subsystems fill
in: the Python environment of a cluster (libraries) and instance pools.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession

from kiln.compute.backends.base import BackendContext, ClusterBackend, DriverStatus, load_backend
from kiln.compute.environment import EnvironmentProvider
from kiln.compute.node_types import NodeTypeCatalogue
from kiln.dbfs import DbfsStore
from kiln.settings import KilnSettings
from kiln.store import Database

if TYPE_CHECKING:
    from kiln.compute.notebook_runs.service import NotebookRuns

__all__ = ["Compute"]

log = logging.getLogger("kiln.compute")


class Compute:
    """Clusters' long-lived state and services."""

    def __init__(
        self,
        settings: KilnSettings,
        db: Database,
        dbfs: DbfsStore,
        *,
        backend: ClusterBackend | None = None,
    ) -> None:
        from kiln.compute.autotermination import AutoTermination
        from kiln.compute.pools.service import InstancePools
        from kiln.compute.supervisor import Supervisor

        self.settings = settings
        self.db = db
        self.dbfs = dbfs
        self.catalogue = NodeTypeCatalogue.from_settings(settings.compute)
        from kiln.compute.libraries.environment import ClusterLibraries

        # Per-cluster virtual environments with the cluster's libraries installed.
        self.libraries = ClusterLibraries(self)
        self.environment: EnvironmentProvider = self.libraries
        # The latest status each running cluster's driver reported (refreshed every tick).
        self.live: dict[str, DriverStatus] = {}
        # Given for tests; otherwise the configured one, imported on first use.
        self._backend: ClusterBackend | None = backend
        self._pooled: ClusterBackend | None = None
        # Instance pools: warm instances, capacity queues, and the refill service.
        self.pools = InstancePools(self)
        self.supervisor = Supervisor(self)
        self.autotermination = AutoTermination(self)
        self.started = False
        # Notebook runs (one context per run, driven cell by cell), made on first use.
        self._notebook_runs: NotebookRuns | None = None
        # The supervisor polls every driver over HTTP each tick; httpx would log every request.
        logging.getLogger("httpx").setLevel(logging.WARNING)

    @property
    def raw_backend(self) -> ClusterBackend:
        """The configured backend, imported on first use (keeps server start fast)."""
        if self._backend is None:
            context = BackendContext(self.settings)
            self._backend = load_backend(self.settings.compute.backend, context)
        return self._backend

    @property
    def backend(self) -> ClusterBackend:
        """The backend clusters use: the configured one, with pool clusters served by pools."""
        if self._pooled is None:
            from kiln.compute.pools.backend import PooledBackend

            self._pooled = PooledBackend(self.raw_backend, self.pools)
        return self._pooled

    @property
    def notebook_runs(self) -> NotebookRuns:
        """The notebook runs service (built on first use: most servers never run one)."""
        if self._notebook_runs is None:
            from kiln.compute.notebook_runs.gateway import ExecutionGateway
            from kiln.compute.notebook_runs.service import NotebookRuns

            self._notebook_runs = NotebookRuns(self.db, ExecutionGateway(self))
        return self._notebook_runs

    @property
    def clusters_dir(self) -> Path:
        """Where cluster files live."""
        return self.settings.clusters_dir

    @property
    def bind_host(self) -> str:
        """The address cluster processes listen on."""
        return self.settings.compute.bind_host

    def proxy_base(self, cluster_id: str) -> str:
        """The Spark UI's public prefix through the control plane (a port follows)."""
        return f"/driver-proxy/o/{self.settings.workspace_id}/{cluster_id}"

    def wake(self) -> None:
        """Ask the supervisor to look at clusters now rather than at its next tick."""
        self.supervisor.wake()

    def wake_after_commit(self, session: AsyncSession) -> None:
        """Wake the supervisor once `session` commits (it must see the change)."""
        event.listen(session.sync_session, "after_commit", lambda _: self.wake(), once=True)

    async def start(self) -> None:
        """Adopt or reconcile clusters left by a previous server, then start the services."""
        from kiln.compute.reconcile import reconcile_at_start

        self.clusters_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        await reconcile_at_start(self)
        await self.pools.start()
        await self.supervisor.start()
        await self.autotermination.start()
        self.started = True

    async def stop(self) -> None:
        """A clean stop of the server: stop the services and every cluster's processes."""
        from kiln.compute.reconcile import terminate_all

        if not self.started:
            return
        self.started = False
        if self._notebook_runs is not None:
            await self._notebook_runs.stop()
        await self.autotermination.stop()
        await self.supervisor.stop()
        await self.libraries.stop()
        try:
            await self.pools.stop()
            await terminate_all(self)
        finally:
            from kiln.compute.execution.service import close_execution_client

            await close_execution_client(self)
            if self._backend is not None:
                await self._backend.close()
