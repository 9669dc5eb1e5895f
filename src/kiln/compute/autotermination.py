"""Autotermination: a named background service that terminates clusters idle for their
`autotermination_minutes` (reason INACTIVITY).

Idle means no command, no job and no Spark activity: the driver reports when Spark last ran
a job (and, once execution contexts exist, a command), the control plane records starts and
API activity, and a cluster with a job running now is never idle. One "minute" is
`settings.compute.autotermination_minute_seconds` seconds, so tests can shrink it.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from kiln.compute.background import BackgroundService
from kiln.compute.lifecycle import begin_termination, load_cluster
from kiln.compute.states import State, TerminationCode
from kiln.store.models import Cluster, now_utc

if TYPE_CHECKING:
    from kiln.compute.service import Compute

__all__ = ["AutoTermination"]

log = logging.getLogger("kiln.compute")


class AutoTermination(BackgroundService):
    """Terminates idle clusters."""

    name = "cluster-autotermination"

    def __init__(self, compute: Compute) -> None:
        super().__init__()
        self.compute = compute

    @property
    def interval(self) -> float:
        """Seconds between looks for idle clusters."""
        return self.compute.settings.compute.autotermination_interval_seconds

    async def tick(self) -> list[str]:
        """Terminate every RUNNING cluster idle past its limit; the ids terminated."""
        async with self.compute.db.session() as session:
            candidates = list(
                (
                    await session.scalars(
                        select(Cluster.cluster_id).where(
                            Cluster.state == State.RUNNING.value, Cluster.deleted_at.is_(None)
                        )
                    )
                ).all()
            )
        terminated = []
        for cluster_id in candidates:
            with contextlib.suppress(StaleDataError):
                async with self.compute.db.session() as session:
                    if await self._check(session, cluster_id):
                        terminated.append(cluster_id)
        if terminated:
            self.compute.wake()
        return terminated

    async def _check(self, session: AsyncSession, cluster_id: str) -> bool:
        row = await load_cluster(session, cluster_id)
        if row is None or row.state != State.RUNNING:
            return False
        minutes = int(row.spec.get("autotermination_minutes") or 0)
        if minutes <= 0:
            return False
        status = self.compute.live.get(cluster_id)
        if status is not None and (status.active_jobs or status.running_tasks):
            return False
        limit = timedelta(
            seconds=minutes * self.compute.settings.compute.autotermination_minute_seconds
        )
        last = max(t for t in (row.last_activity_time, row.last_restarted_time) if t is not None)
        if now_utc() - last < limit:
            return False
        begin_termination(
            session,
            row,
            TerminationCode.INACTIVITY,
            f"Inactive cluster terminated (inactive for {minutes} minutes).",
            inactivity_duration_min=str(minutes),
        )
        log.info("cluster %s: terminated after %d idle minutes", cluster_id, minutes)
        return True
