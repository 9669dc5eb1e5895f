"""`InstancePools`: the long-lived part of instance pools, held by `Compute`.

It lends warm instances to clusters (`acquire`), takes them back (`release`: a used Spark
application is retired, never handed to the next cluster), queues clusters when a pool is
full, and owns the warm-pool background service that refills pools and retires idle
instances. Invariants: every instance's processes are recorded (PIDs with start times) in its
`PoolInstance` row before anything waits on them; no idle instance survives a pool delete or a
clean stop of the server; a restarted server adopts live idle instances and reaps the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import sys
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from kiln.compute.backends.base import (
    ClusterBackend,
    LaunchFailed,
    LaunchSpec,
    PythonEnvironment,
    Reporter,
    RuntimeHandle,
)
from kiln.compute.lifecycle import load_cluster
from kiln.compute.pools.attach import cold_start_reason
from kiln.compute.pools.capacity import Usage, grant, waiting_message
from kiln.compute.pools.spec import InstanceState, PoolSpec, PoolState, fail_fast
from kiln.compute.states import ACTIVE_STATES, EventType, TerminationCode
from kiln.errors import InvalidParameterValue
from kiln.store.models import (
    ClusterLibrary,
    InstancePool,
    PoolInstance,
    PoolWaiter,
    now_utc,
)

if TYPE_CHECKING:
    from kiln.compute.service import Compute

__all__ = ["InstancePools", "new_instance_id", "usage_of"]

log = logging.getLogger("kiln.compute.pools")

# How often a waiting cluster looks again even if nothing told it capacity freed.
_RECHECK_SECONDS = 2.0


def new_instance_id() -> str:
    """A pool instance id (also the name of its folder beside the clusters' folders)."""
    return f"pi-{secrets.token_hex(8)}"


def handle_of_instance(row: PoolInstance) -> RuntimeHandle | None:
    """The backend handle an instance row holds, if its processes were ever recorded."""
    data = dict(row.handle or {})
    if not data.get("backend"):
        return None
    return RuntimeHandle(
        backend=str(data["backend"]),
        data=dict(data.get("data") or {}),
        control_url=data.get("control_url"),
        secret_path=data.get("secret_path"),
        spark_app_id=data.get("spark_app_id"),
        spark_ui_port=data.get("spark_ui_port"),
    )


def handle_record(handle: RuntimeHandle) -> dict[str, Any]:
    """The stored form of a handle (kept in `PoolInstance.handle`)."""
    return {
        "backend": handle.backend,
        "data": dict(handle.data),
        "control_url": handle.control_url,
        "secret_path": handle.secret_path,
        "spark_app_id": handle.spark_app_id,
        "spark_ui_port": handle.spark_ui_port,
    }


async def usage_of(session: AsyncSession, pool_id: str) -> Usage:
    """A pool's instances counted by state."""
    rows = (
        await session.execute(
            select(PoolInstance.state, func.count())
            .where(PoolInstance.instance_pool_id == pool_id)
            .group_by(PoolInstance.state)
        )
    ).all()
    counts = {str(state): int(n) for state, n in rows}
    return Usage(
        pending_idle=counts.get(InstanceState.PENDING, 0),
        idle=counts.get(InstanceState.IDLE, 0),
        pending_used=counts.get(InstanceState.PENDING_USED, 0),
        used=counts.get(InstanceState.USED, 0),
    )


class InstanceReporter:
    """Where a warm instance's backend reports: the handle goes to its row at once."""

    def __init__(self, pools: InstancePools, instance_id: str) -> None:
        self.pools = pools
        self.instance_id = instance_id

    async def event(self, event_type: EventType, **details: Any) -> None:
        """Instances have no event log of their own; keep it in the server log."""
        log.debug("instance %s: %s %s", self.instance_id, event_type.value, details)

    async def record(self, handle: RuntimeHandle) -> None:
        """Persist the handle before anything waits on the processes it names."""
        async with self.pools.compute.db.session() as session:
            row = await session.get(PoolInstance, self.instance_id)
            if row is not None:
                row.handle = handle_record(handle)
                row.updated_at = now_utc()


class InstancePools:
    """Warm instances, capacity and the pool queue."""

    def __init__(self, compute: Compute) -> None:
        from kiln.compute.pools.warm import WarmPools

        self.compute = compute
        # One decision about capacity at a time (a single control-plane process).
        self.lock = asyncio.Lock()
        self._freed = asyncio.Event()
        self.warm = WarmPools(self)
        # Recent start failures per pool (`InstancePoolStatus.pending_instance_errors`).
        self.errors: dict[str, list[dict[str, str]]] = {}

    # -- the backend, unwrapped ------------------------------------------------------------

    @property
    def backend(self) -> ClusterBackend:
        """The real backend (clusters see it through `PooledBackend`)."""
        return self.compute.raw_backend

    def instance_environment(self) -> PythonEnvironment:
        """The Python a warm instance's user code runs on: Kiln's own."""
        return PythonEnvironment(python=sys.executable)

    # -- validation of cluster specs ---------------------------------------------------------

    async def resolve_cluster_body(
        self, session: AsyncSession, raw: dict[str, Any]
    ) -> dict[str, Any]:
        """A create/edit body with its pools checked and their node types filled in (a pool
        cluster's nodes are its pools' instances); a 400 naming the field otherwise."""
        pool_id = raw.get("instance_pool_id")
        driver_pool_id = raw.get("driver_instance_pool_id")
        if driver_pool_id and not pool_id:
            raise InvalidParameterValue(
                "instance_pool_id is required when driver_instance_pool_id is set."
            )
        if not pool_id:
            return raw
        out = dict(raw)
        for field, node_field, value in (
            ("instance_pool_id", "node_type_id", pool_id),
            ("driver_instance_pool_id", "driver_node_type_id", driver_pool_id or pool_id),
        ):
            if not isinstance(value, str):
                raise InvalidParameterValue(f"{field} must be a string.")
            pool = await session.get(InstancePool, value)
            if pool is None or pool.state == PoolState.DELETED:
                raise InvalidParameterValue(f"{field}: Instance pool {value} does not exist.")
            node = PoolSpec.of(pool.spec).node_type_id
            given = raw.get(node_field)
            if node_field == "driver_node_type_id" and given is None and not driver_pool_id:
                given = raw.get("node_type_id")
            if given is not None and given != node:
                raise InvalidParameterValue(
                    f"{node_field}: {given} is not the node type of instance pool {value} "
                    f"({node}); a pool cluster's nodes are its pool's instances."
                )
            out[node_field] = node
        return out

    # -- capacity ----------------------------------------------------------------------------

    def notify(self) -> None:
        """Capacity may have freed: every waiting cluster looks again."""
        self._freed.set()
        self._freed = asyncio.Event()

    async def _set_message(self, session: AsyncSession, cluster_id: str, message: str) -> None:
        row = await load_cluster(session, cluster_id)
        if row is not None and row.state in ACTIVE_STATES and row.state_message != message:
            row.state_message = message

    async def _reserve_once(
        self, cluster_id: str, pool_id: str, needed: int, fail: bool
    ) -> list[PoolInstance] | None:
        """Take `needed` instances now, or queue (and return None)."""
        async with self.compute.db.session() as session:
            pool = await session.get(InstancePool, pool_id)
            if pool is None or pool.state == PoolState.DELETED:
                await session.execute(delete(PoolWaiter).where(PoolWaiter.cluster_id == cluster_id))
                raise LaunchFailed(
                    TerminationCode.INSTANCE_POOL_NOT_FOUND,
                    f"Instance pool {pool_id} does not exist.",
                )
            spec = PoolSpec.of(pool.spec)
            if spec.max_capacity is not None and needed > spec.max_capacity:
                raise LaunchFailed(
                    TerminationCode.INSTANCE_POOL_MAX_CAPACITY_REACHED,
                    f"The cluster needs {needed} instances but instance pool {pool_id} holds at "
                    f"most {spec.max_capacity}.",
                )
            waiter = await session.scalar(
                select(PoolWaiter).where(PoolWaiter.cluster_id == cluster_id)
            )
            if waiter is not None and waiter.instance_pool_id != pool_id:
                await session.delete(waiter)
                await session.flush()
                waiter = None
            if waiter is None:
                waiter = PoolWaiter(
                    cluster_id=cluster_id, instance_pool_id=pool_id, instances_needed=needed
                )
                session.add(waiter)
                await session.flush()
            ahead = int(
                await session.scalar(
                    select(func.count())
                    .select_from(PoolWaiter)
                    .where(PoolWaiter.instance_pool_id == pool_id, PoolWaiter.id < waiter.id)
                )
                or 0
            )
            usage = await usage_of(session, pool_id)
            granted = grant(usage, spec.max_capacity, needed, ahead)
            if granted is None:
                if fail:
                    await session.delete(waiter)
                    raise LaunchFailed(
                        TerminationCode.INSTANCE_POOL_MAX_CAPACITY_REACHED,
                        f"Instance pool {pool_id} reached its max_capacity of "
                        f"{spec.max_capacity} instances.",
                    )
                message = waiting_message(spec.instance_pool_name, ahead, usage, spec.max_capacity)
                await self._set_message(session, cluster_id, message)
                return None
            idle = list(
                (
                    await session.scalars(
                        select(PoolInstance)
                        .where(
                            PoolInstance.instance_pool_id == pool_id,
                            PoolInstance.state == InstanceState.IDLE,
                        )
                        .order_by(PoolInstance.idle_since)
                        .limit(granted.warm)
                    )
                ).all()
            )
            now = now_utc()
            for row in idle:
                row.state = InstanceState.PENDING_USED
                row.cluster_id = cluster_id
                row.updated_at = now
            fresh = [
                PoolInstance(
                    instance_id=new_instance_id(),
                    instance_pool_id=pool_id,
                    state=InstanceState.PENDING_USED,
                    cluster_id=cluster_id,
                    handle={},
                )
                for _ in range(granted.fresh)
            ]
            session.add_all(fresh)
            await session.delete(waiter)
            await self._set_message(session, cluster_id, "Starting Spark")
            return [*idle, *fresh]

    async def reserve(
        self, cluster_id: str, pool_id: str, needed: int, fail: bool
    ) -> list[PoolInstance]:
        """Instances for a cluster, waiting in arrival order while the pool is full."""
        try:
            while True:
                freed = self._freed
                try:
                    async with self.lock:
                        taken = await self._reserve_once(cluster_id, pool_id, needed, fail)
                except StaleDataError:
                    taken = None  # the cluster row moved meanwhile: look again
                if taken is not None:
                    return taken
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(freed.wait(), _RECHECK_SECONDS)
        except BaseException:
            # Cancelled (terminated while waiting) or failed: leave the queue.
            with contextlib.suppress(Exception):
                await self._leave_queue(cluster_id)
            raise

    async def _leave_queue(self, cluster_id: str) -> None:
        async with self.compute.db.session() as session:
            await session.execute(delete(PoolWaiter).where(PoolWaiter.cluster_id == cluster_id))
        self.notify()

    async def acquire(self, launch: LaunchSpec, reporter: Reporter) -> RuntimeHandle:
        """Start a pool cluster: reserve its instances (queueing if needed), then attach a warm
        driver or, where a warm one cannot serve it (`cold_start_reason`), start it cold
        inside the reserved capacity."""
        spec = launch.spec
        assert spec.instance_pool_id is not None
        driver_pool = spec.driver_instance_pool_id or spec.instance_pool_id
        fail = fail_fast(spec.spark_conf, spec.custom_tags)
        needs: dict[str, int] = {driver_pool: 1}
        if launch.workers:
            needs[spec.instance_pool_id] = needs.get(spec.instance_pool_id, 0) + launch.workers
        taken: list[PoolInstance] = []
        for pool_id, needed in needs.items():
            taken += await self.reserve(launch.cluster_id, pool_id, needed, fail)
        warm = [
            (row.instance_id, h)
            for row in taken
            if row.instance_pool_id == driver_pool and (h := handle_of_instance(row)) is not None
        ]
        reason = cold_start_reason(
            spec,
            await self._pool_spec(driver_pool),
            workers=launch.workers,
            init_scripts=bool(launch.init_scripts),
            libraries=await self._has_libraries(launch.cluster_id),
        )
        if warm and reason is None:
            instance_id, instance = warm[0]
            await reporter.event(
                EventType.DRIVER_HEALTHY,
                driver_state_message=f"Took warm instance {instance_id} of instance pool "
                f"{driver_pool}: no cold start.",
            )
            handle = await self.backend.attach(instance, launch, reporter)
            handle.data["instance_id"] = instance_id
            await reporter.record(handle)
            await self._mark_used(launch.cluster_id, {instance_id: handle})
            return handle
        # Cold inside the pool's capacity: the warm instances taken cannot serve it.
        why = reason or "no warm instance was idle"
        await reporter.event(
            EventType.STARTING,
            driver_state_message=f"Starting cold inside instance pool {driver_pool}: {why}.",
        )
        for instance_id, instance in warm:
            await self.retire(instance_id, instance)
        handle = await self.backend.start(launch, reporter)
        await self._mark_used(launch.cluster_id, {})
        return handle

    async def _pool_spec(self, pool_id: str) -> PoolSpec:
        async with self.compute.db.session() as session:
            pool = await session.get(InstancePool, pool_id)
        if pool is None:
            raise LaunchFailed(
                TerminationCode.INSTANCE_POOL_NOT_FOUND, f"Instance pool {pool_id} does not exist."
            )
        return PoolSpec.of(pool.spec)

    async def _has_libraries(self, cluster_id: str) -> bool:
        """Whether the cluster has libraries (its own or every cluster's): those need its own
        environment, which a warm instance started before the cluster cannot have."""
        async with self.compute.db.session() as session:
            found = await session.scalar(
                select(ClusterLibrary.id)
                .where(
                    (ClusterLibrary.cluster_id == cluster_id) | ClusterLibrary.cluster_id.is_(None)
                )
                .limit(1)
            )
        return found is not None

    async def _mark_used(self, cluster_id: str, handles: dict[str, RuntimeHandle]) -> None:
        async with self.compute.db.session() as session:
            rows = (
                await session.scalars(
                    select(PoolInstance).where(PoolInstance.cluster_id == cluster_id)
                )
            ).all()
            for row in rows:
                row.state = InstanceState.USED
                row.handle = (
                    handle_record(handles[row.instance_id]) if row.instance_id in handles else {}
                )
                row.updated_at = now_utc()

    async def retire(self, instance_id: str, handle: RuntimeHandle | None) -> None:
        """Stop an instance's processes and remove its folder."""
        await self.backend.stop(instance_id, handle)
        await self.backend.forget(instance_id)

    async def release(self, cluster_id: str) -> None:
        """A cluster's instances leave it: their processes are retired (a used Spark
        application never serves the next cluster) and their capacity frees."""
        async with self.compute.db.session() as session:
            await session.execute(delete(PoolWaiter).where(PoolWaiter.cluster_id == cluster_id))
            rows = list(
                (
                    await session.scalars(
                        select(PoolInstance).where(PoolInstance.cluster_id == cluster_id)
                    )
                ).all()
            )
            doomed = [(r.instance_id, handle_of_instance(r)) for r in rows]
        if not doomed:
            return
        for instance_id, handle in doomed:
            await self.backend.stop(instance_id, handle)
        async with self.compute.db.session() as session:
            await session.execute(
                delete(PoolInstance).where(PoolInstance.instance_id.in_([i for i, _ in doomed]))
            )
        log.info("cluster %s: released %d pool instances", cluster_id, len(doomed))
        self.notify()
        self.warm.wake()

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Adopt live idle instances left by a previous server, reap the rest, start refilling."""
        await self.warm.adopt_at_start()
        await self.warm.start()

    async def stop(self) -> None:
        """A clean stop: no refills, and no idle or starting instance left running."""
        await self.warm.stop()
        await self.warm.stop_free_instances(None)
