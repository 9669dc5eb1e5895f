"""The checks of job settings that need the store: clusters and pools that exist, cluster
specs the compute layer accepts, jobs a run_job_task names; and the schedule's next tick."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from kiln.errors import InvalidParameterValue
from kiln.jobs.cron import QuartzCron
from kiln.jobs.runners.base import ClusterProvider
from kiln.jobs.spec import refs_of
from kiln.jobs.states import PauseStatus
from kiln.principal import Principal
from kiln.store.models import Job

__all__ = ["check_settings", "next_fire"]


async def check_settings(
    session: AsyncSession,
    clusters: ClusterProvider,
    principal: Principal,
    settings: dict[str, Any],
    *,
    own_job_id: int | None = None,
) -> None:
    """400 naming the field for anything the settings name that does not exist."""
    refs = refs_of(settings)
    await clusters.check(session, principal, refs.clusters, refs.new_clusters)
    for where, job_id in refs.jobs:
        if job_id == own_job_id:
            raise InvalidParameterValue(f"{where}: a job cannot run itself.")
        if await session.get(Job, job_id) is None:
            raise InvalidParameterValue(f"{where}: Job {job_id} does not exist.")


def next_fire(settings: dict[str, Any], after: datetime) -> datetime | None:
    """The schedule's first tick after `after` (None: no schedule, or paused)."""
    schedule = settings.get("schedule")
    if not schedule or schedule.get("pause_status") == PauseStatus.PAUSED:
        return None
    cron = QuartzCron(schedule["quartz_cron_expression"], schedule.get("timezone_id", "UTC"))
    return cron.next_after(after)
