"""The warm-pool service: a named background service that keeps each pool at its
`min_idle_instances`, retires idle instances above the minimum once they have been idle for
`idle_instance_autotermination_minutes`, reaps instances whose processes died, and stops the
idle instances of deleted pools. `tick()` does one pass; tests call it directly. One idle
"minute" is `settings.compute.pool_idle_minute_seconds` seconds, so tests can shrink it.

A warm instance is a started, idle driver runtime (JVM up, Python imported, a local-mode
SparkSession created and warmed by one job), started through the backend's `start_instance`.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import delete, select

from kiln.compute.backends.base import InstanceSpec, LaunchFailed
from kiln.compute.background import BackgroundService
from kiln.compute.pools.spec import InstanceState, PoolSpec, PoolState
from kiln.store.models import (
    Cluster,
    ClusterRuntime,
    InstancePool,
    PoolInstance,
    PoolWaiter,
    now_utc,
)

if TYPE_CHECKING:
    from kiln.compute.pools.service import InstancePools

__all__ = ["WarmPools"]

log = logging.getLogger("kiln.compute.pools")

_FREE = (InstanceState.PENDING.value, InstanceState.IDLE.value)
# Start failures kept per pool (Databricks keeps at most min_idle of them).
_MAX_ERRORS = 10


class WarmPools(BackgroundService):
    """Refills pools, retires idle instances, reaps dead ones."""

    name = "instance-pool-warmer"

    def __init__(self, pools: InstancePools) -> None:
        super().__init__()
        self.pools = pools
        # Instances being started: instance_id -> (pool_id, task).
        self.starting: dict[str, tuple[str, asyncio.Task[None]]] = {}

    @property
    def interval(self) -> float:
        """Seconds between passes when nothing wakes the service."""
        return self.pools.compute.settings.compute.supervisor_interval_seconds

    @property
    def minute(self) -> float:
        """Seconds in one idle_instance_autotermination "minute" (shrunk in tests)."""
        return self.pools.compute.settings.compute.pool_idle_minute_seconds

    async def stop(self) -> None:
        """Stop passing and cancel instance starts in flight (their processes stay recorded)."""
        await super().stop()
        await self._cancel_starts(None)

    # -- one pass ----------------------------------------------------------------------------

    async def tick(self) -> None:
        """Reap, retire and refill every pool once; stop what deleted pools left."""
        async with self.pools.compute.db.session() as session:
            pools = list((await session.scalars(select(InstancePool))).all())
        for pool in pools:
            if pool.state == PoolState.DELETED:
                await self.stop_free_instances(pool.instance_pool_id)
                continue
            spec = PoolSpec.of(pool.spec)
            await self._reap_dead(pool.instance_pool_id)
            await self._retire_idle(pool.instance_pool_id, spec)
            if pool.state == PoolState.ACTIVE:
                await self._refill(pool.instance_pool_id, spec)
        await self._reap_orphans()

    async def _rows(self, pool_id: str | None, states: tuple[str, ...]) -> list[PoolInstance]:
        async with self.pools.compute.db.session() as session:
            query = select(PoolInstance).where(PoolInstance.state.in_(states))
            if pool_id is not None:
                query = query.where(PoolInstance.instance_pool_id == pool_id)
            return list((await session.scalars(query.order_by(PoolInstance.created_at))).all())

    async def _drop(self, rows: list[PoolInstance]) -> None:
        """Retire instances (stop their processes, remove their folders) and forget them."""
        from kiln.compute.pools.service import handle_of_instance

        for row in rows:
            await self.pools.retire(row.instance_id, handle_of_instance(row))
        if rows:
            async with self.pools.compute.db.session() as session:
                await session.execute(
                    delete(PoolInstance).where(
                        PoolInstance.instance_id.in_([r.instance_id for r in rows])
                    )
                )
            self.pools.notify()

    async def _reap_dead(self, pool_id: str) -> None:
        from kiln.compute.pools.service import handle_of_instance

        dead = []
        for row in await self._rows(pool_id, (InstanceState.IDLE.value,)):
            handle = handle_of_instance(row)
            if handle is None or not (await self.pools.backend.probe(handle)).alive:
                dead.append(row)
        if dead:
            log.warning("pool %s: %d idle instances died; replacing them", pool_id, len(dead))
        await self._drop(dead)

    async def _retire_idle(self, pool_id: str, spec: PoolSpec) -> None:
        idle = await self._rows(pool_id, (InstanceState.IDLE.value,))
        surplus = len(idle) - spec.min_idle_instances
        if surplus <= 0:
            return
        limit = timedelta(seconds=spec.idle_instance_autotermination_minutes * self.minute)
        now = now_utc()
        # The longest idle go first; the newest stay as the warm minimum.
        expired = [r for r in idle if r.idle_since is not None and now - r.idle_since >= limit]
        doomed = expired[:surplus]
        if doomed:
            log.info("pool %s: retiring %d idle instances", pool_id, len(doomed))
        await self._drop(doomed)

    async def _refill(self, pool_id: str, spec: PoolSpec) -> None:
        from kiln.compute.pools.service import new_instance_id, usage_of

        async with self.pools.lock, self.pools.compute.db.session() as session:
            waiting = await session.scalar(
                select(PoolWaiter.id).where(PoolWaiter.instance_pool_id == pool_id).limit(1)
            )
            if waiting is not None:
                return  # capacity goes to queued clusters first
            usage = await usage_of(session, pool_id)
            wanted = spec.min_idle_instances - usage.idle - usage.pending_idle
            if spec.max_capacity is not None:
                wanted = min(wanted, spec.max_capacity - usage.total)
            if wanted <= 0:
                return
            ids = [new_instance_id() for _ in range(wanted)]
            session.add_all(
                PoolInstance(
                    instance_id=i,
                    instance_pool_id=pool_id,
                    state=InstanceState.PENDING.value,
                    handle={},
                )
                for i in ids
            )
        for instance_id in ids:
            task = asyncio.create_task(
                self._start_instance(pool_id, instance_id, spec),
                name=f"pool-instance-{instance_id}",
            )
            self.starting[instance_id] = (pool_id, task)

    async def _start_instance(self, pool_id: str, instance_id: str, spec: PoolSpec) -> None:
        from kiln.compute.pools.service import InstanceReporter, handle_record

        pools = self.pools
        instance = InstanceSpec(
            instance_id=instance_id,
            spark_version=spec.spark_version,
            node_type_id=spec.node_type_id,
            environment=pools.instance_environment(),
        )
        try:
            handle = await pools.backend.start_instance(
                instance, InstanceReporter(pools, instance_id)
            )
        except asyncio.CancelledError:
            await self._drop(await self._by_id(instance_id))
            raise
        except Exception as exc:
            message = exc.message if isinstance(exc, LaunchFailed) else repr(exc)
            log.warning("pool %s: instance %s failed to start: %s", pool_id, instance_id, message)
            errors = pools.errors.setdefault(pool_id, [])
            errors.append({"instance_id": instance_id, "message": message[:2000]})
            del errors[:-_MAX_ERRORS]
            await self._drop(await self._by_id(instance_id))
            return
        finally:
            self.starting.pop(instance_id, None)
        kept = False
        async with pools.compute.db.session() as session:
            row = await session.get(PoolInstance, instance_id)
            pool = await session.get(InstancePool, pool_id)
            if row is not None and pool is not None and pool.state != PoolState.DELETED:
                row.state = InstanceState.IDLE.value
                row.handle = handle_record(handle)
                row.idle_since = row.updated_at = now_utc()
                kept = True
        if not kept:
            await pools.retire(instance_id, handle)
            await self._drop(await self._by_id(instance_id))
            return
        pools.errors.pop(pool_id, None)
        log.info("pool %s: instance %s is warm", pool_id, instance_id)
        pools.notify()

    async def _by_id(self, instance_id: str) -> list[PoolInstance]:
        async with self.pools.compute.db.session() as session:
            row = await session.get(PoolInstance, instance_id)
            return [row] if row is not None else []

    async def _cancel_starts(self, pool_id: str | None) -> None:
        tasks = [t for p, t in self.starting.values() if pool_id is None or p == pool_id]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def stop_free_instances(self, pool_id: str | None) -> None:
        """Stop the idle and starting instances of one pool (or of all pools)."""
        await self._cancel_starts(pool_id)
        await self._drop(await self._rows(pool_id, _FREE))

    async def _reap_orphans(self) -> None:
        """Instances lent to clusters that no longer run, and folders nobody records."""
        from kiln.compute.states import ACTIVE_STATES

        active = [s.value for s in ACTIVE_STATES]
        async with self.pools.compute.db.session() as session:
            lent = list(
                (
                    await session.scalars(
                        select(PoolInstance)
                        .outerjoin(Cluster, Cluster.cluster_id == PoolInstance.cluster_id)
                        .where(
                            PoolInstance.state.not_in(_FREE),
                            (Cluster.cluster_id.is_(None)) | Cluster.state.not_in(active),
                        )
                    )
                ).all()
            )
            known = set((await session.scalars(select(PoolInstance.instance_id))).all())
            for handle in (await session.scalars(select(ClusterRuntime.handle))).all():
                if isinstance(handle, dict) and handle.get("instance_id"):
                    known.add(str(handle["instance_id"]))
        await self._drop(lent)
        root = self.pools.compute.clusters_dir
        folders = await asyncio.to_thread(
            lambda: [p for p in root.glob("pi-*") if p.is_dir()] if root.is_dir() else []
        )
        for folder in folders:
            if folder.name not in known and folder.name not in self.starting:
                await asyncio.to_thread(shutil.rmtree, folder, True)

    async def adopt_at_start(self) -> None:
        """After a server restart: keep idle instances whose processes still answer, reap the
        rest (instances cut short while starting, or lent to clusters that are gone)."""
        from kiln.compute.pools.service import handle_of_instance

        doomed: list[PoolInstance] = []
        async with self.pools.compute.db.session() as session:
            rows = list((await session.scalars(select(PoolInstance))).all())
            deleted = set(
                (
                    await session.scalars(
                        select(InstancePool.instance_pool_id).where(
                            InstancePool.state == PoolState.DELETED.value
                        )
                    )
                ).all()
            )
        adopted = 0
        for row in rows:
            if row.state == InstanceState.PENDING or (
                row.state == InstanceState.IDLE and row.instance_pool_id in deleted
            ):
                doomed.append(row)
            elif row.state == InstanceState.IDLE:
                handle = handle_of_instance(row)
                if handle is not None and await self.pools.backend.adopt(handle):
                    adopted += 1
                else:
                    doomed.append(row)
        if rows:
            log.info("pools: adopted %d idle instances, reaping %d", adopted, len(doomed))
        await self._drop(doomed)
        await self._reap_orphans()
