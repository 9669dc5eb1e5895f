"""What happens to clusters when the control plane starts and when it stops cleanly.

At start, clusters whose processes still run (same PIDs and start times, driver answering)
are adopted and keep working; clusters whose processes are gone are terminated with the
reason; operations that were cut short (a start, a restart) are begun again from scratch. At a
clean stop every cluster is terminated and no Spark process is left behind.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from kiln.compute import operations
from kiln.compute.events import add_event
from kiln.compute.lifecycle import begin_termination, handle_of, load_cluster
from kiln.compute.states import ACTIVE_STATES, EventType, State, TerminationCode, transition
from kiln.store.models import Cluster, ClusterRuntime

if TYPE_CHECKING:
    from kiln.compute.service import Compute

__all__ = ["reconcile_at_start", "terminate_all"]

log = logging.getLogger("kiln.compute")

GONE = "The cluster's processes were gone when the Kiln server started again."


async def _active(compute: Compute) -> list[str]:
    async with compute.db.session() as session:
        return list(
            (
                await session.scalars(
                    select(Cluster.cluster_id).where(
                        Cluster.state.in_([s.value for s in ACTIVE_STATES])
                    )
                )
            ).all()
        )


async def _reconcile(compute: Compute, cluster_id: str) -> None:
    async with compute.db.session() as session:
        row = await load_cluster(session, cluster_id)
        if row is None:
            return
        state = State(row.state)
        handle = handle_of(await session.get(ClusterRuntime, cluster_id))
    if state in (State.RUNNING, State.RESIZING):
        adopted = handle is not None and await compute.backend.adopt(handle)
        async with compute.db.session() as session:
            row = await load_cluster(session, cluster_id)
            if row is None or row.state != state:
                return
            if adopted:
                _adopt(session, row, state)
            else:
                add_event(
                    session, cluster_id, EventType.DRIVER_UNAVAILABLE, driver_state_message=GONE
                )
                begin_termination(
                    session,
                    row,
                    TerminationCode.DRIVER_UNRESPONSIVE,
                    f"Driver is unresponsive: {GONE}",
                    databricks_error_message=GONE,
                )
        log.info("cluster %s: %s", cluster_id, "adopted" if adopted else "reconciled: gone")
    elif state in (State.PENDING, State.RESTARTING):
        # A start cut short: clear what it left; the supervisor starts it again from scratch.
        await compute.backend.stop(cluster_id, handle)
        async with compute.db.session() as session:
            runtime = await session.get(ClusterRuntime, cluster_id)
            if runtime is not None:
                await session.delete(runtime)


def _adopt(session: AsyncSession, row: Cluster, state: State) -> None:
    if state == State.RESIZING:
        transition(row, State.RUNNING, "")
    add_event(
        session,
        row.cluster_id,
        EventType.DRIVER_HEALTHY,
        driver_state_message="Adopted after the Kiln server restarted; its processes kept running.",
    )


async def reconcile_at_start(compute: Compute) -> None:
    """Adopt live clusters and reconcile the rest, all clusters at once."""
    ids = await _active(compute)
    if ids:
        await asyncio.gather(*(_reconcile(compute, cid) for cid in ids))


async def terminate_all(compute: Compute) -> None:
    """Terminate every cluster that holds processes (a clean stop of the server)."""
    ids = await _active(compute)
    for cluster_id in ids:
        async with compute.db.session() as session:
            row = await load_cluster(session, cluster_id)
            if row is not None and row.state != State.TERMINATING:
                begin_termination(
                    session,
                    row,
                    TerminationCode.USER_REQUEST,
                    "Terminated because the Kiln server stopped.",
                    username="kiln",
                )
    results = await asyncio.gather(
        *(operations.stop_op(compute, cid) for cid in ids), return_exceptions=True
    )
    for cluster_id, result in zip(ids, results, strict=True):
        if isinstance(result, BaseException):
            log.error("cluster %s: stop at shutdown failed: %r", cluster_id, result)
