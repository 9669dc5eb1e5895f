"""The cluster supervisor: a named background service that drives every cluster toward what its
state asks for.

Each `tick()` reads the clusters that hold or want processes and runs, per cluster, at most one
operation: PENDING starts it, RESTARTING restarts it, RESIZING resizes it, TERMINATING stops
it, and RUNNING is watched (health, activity, autoscaling, logs). A termination overrides
whatever operation is in flight: that one is cancelled first. The API never waits on any of
this; it changes a cluster's state and wakes the supervisor.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from sqlalchemy import or_, select

from kiln.compute import operations
from kiln.compute.background import BackgroundService
from kiln.compute.operations import ClusterWatch
from kiln.compute.states import ACTIVE_STATES, State
from kiln.store.models import Cluster

if TYPE_CHECKING:
    from kiln.compute.service import Compute

__all__ = ["Supervisor"]

log = logging.getLogger("kiln.compute")

_OPERATIONS = {
    State.PENDING: "start",
    State.RESTARTING: "restart",
    State.RESIZING: "resize",
    State.TERMINATING: "stop",
}


class Supervisor(BackgroundService):
    """Starts, watches, resizes and stops clusters in the background."""

    name = "cluster-supervisor"

    def __init__(self, compute: Compute) -> None:
        super().__init__()
        self.compute = compute
        # At most one operation per cluster: (name, task).
        self.operations: dict[str, tuple[str, asyncio.Task[None]]] = {}
        self.memos: dict[str, ClusterWatch] = {}

    @property
    def interval(self) -> float:
        """Seconds between ticks when nothing wakes the supervisor."""
        return self.compute.settings.compute.supervisor_interval_seconds

    async def stop(self) -> None:
        """Stop ticking and cancel every operation in flight (their processes stay recorded)."""
        await super().stop()
        tasks = [task for _, task in self.operations.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.operations.clear()

    async def tick(self) -> None:
        """Look at every cluster that holds or wants processes and start what it needs."""
        async with self.compute.db.session() as session:
            rows = (
                await session.execute(
                    select(Cluster.cluster_id, Cluster.state, Cluster.deleted_at).where(
                        or_(
                            Cluster.state.in_([s.value for s in ACTIVE_STATES]),
                            Cluster.deleted_at.is_not(None),
                        )
                    )
                )
            ).all()
        seen: set[str] = set()
        for cluster_id, state, deleted_at in rows:
            seen.add(cluster_id)
            await self._schedule(cluster_id, State(state), deleted_at is not None)
        for cluster_id in list(self.memos):
            if cluster_id not in seen:
                self.memos.pop(cluster_id, None)
                self.compute.live.pop(cluster_id, None)

    async def _schedule(self, cluster_id: str, state: State, deleted: bool) -> None:
        wanted = _OPERATIONS.get(state)
        if state == State.RUNNING:
            wanted = "watch"
        elif state == State.TERMINATED and deleted:
            wanted = "delete"
        current = self.operations.get(cluster_id)
        if current is not None and not current[1].done():
            if current[0] == wanted or wanted is None:
                return
            if wanted != "stop" and current[0] != "watch":
                return  # let the operation finish; the next tick picks up the new state
            current[1].cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await current[1]
        if wanted is None:
            return
        self._launch(cluster_id, wanted, self._operation(cluster_id, wanted))

    def _operation(self, cluster_id: str, name: str) -> Coroutine[Any, Any, None]:
        compute = self.compute
        if name == "start":
            return operations.start_op(compute, cluster_id, restart=False)
        if name == "restart":
            return operations.start_op(compute, cluster_id, restart=True)
        if name == "resize":
            return operations.resize_op(compute, cluster_id)
        if name == "stop":
            return operations.stop_op(compute, cluster_id)
        if name == "delete":
            return operations.finish_delete(compute, cluster_id)
        memo = self.memos.setdefault(cluster_id, ClusterWatch())
        return operations.watch_op(compute, cluster_id, memo)

    def _launch(self, cluster_id: str, name: str, coro: Coroutine[Any, Any, None]) -> None:
        async def run() -> None:
            try:
                await coro
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("cluster %s: %s failed", cluster_id, name)
            finally:
                # A finished operation may have moved the cluster on: look again now.
                if name != "watch":
                    self.wake()

        task = asyncio.create_task(run(), name=f"cluster-{name}-{cluster_id}")
        self.operations[cluster_id] = (name, task)

    async def settle(self, cluster_id: str) -> None:
        """Wait for the operation in flight on a cluster, if any (tests, shutdown)."""
        current = self.operations.get(cluster_id)
        if current is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await current[1]
