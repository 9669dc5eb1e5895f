"""`Scheduler`: fires each scheduled job's Quartz cron ticks, each exactly once.

A job records its next tick (`next_fire_at`). When that time comes the scheduler creates the
run (trigger PERIODIC) and moves `next_fire_at` on, and records the tick as `last_fired_at`,
all in one transaction guarded by the tick it expected: a tick is fired once even if two
passes race, and never again after a restart. Ticks missed while the server was down are
coalesced into one run at start (Quartz's fire-once-now misfire rule), and the schedule goes
on from the next tick after now.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from kiln.compute.background import BackgroundService
from kiln.errors import KilnError
from kiln.jobs.checks import next_fire
from kiln.jobs.engine import JobsEngine
from kiln.jobs.launch import job_run
from kiln.jobs.states import TriggerType
from kiln.store import Database
from kiln.store.models import Job, JobRun, now_utc

__all__ = ["Scheduler"]

log = logging.getLogger("kiln.jobs.scheduler")

# Look at the schedules at least this often (a clock change, a missed wake-up).
MAX_SLEEP_SECONDS = 10.0


class _AlreadyFired(Exception):
    """Another pass fired the tick (or the schedule changed) first."""


class Scheduler(BackgroundService):
    """The background service that starts scheduled runs."""

    name = "kiln-jobs-scheduler"

    def __init__(self, engine: JobsEngine, db: Database) -> None:
        super().__init__()
        self.engine = engine
        self.db = db
        self._next: datetime | None = None

    @property
    def interval(self) -> float:
        """Until the earliest next tick (at most MAX_SLEEP_SECONDS)."""
        if self._next is None:
            return MAX_SLEEP_SECONDS
        seconds = (self._next - now_utc()).total_seconds()
        return min(MAX_SLEEP_SECONDS, max(0.0, seconds))

    async def tick(self) -> int:
        """Fire every tick that is due; how many runs were started."""
        now = now_utc()
        async with self.db.session() as session:
            due = (
                await session.execute(
                    select(Job.job_id, Job.next_fire_at).where(
                        Job.next_fire_at.is_not(None), Job.next_fire_at <= now
                    )
                )
            ).all()
        fired = 0
        for job_id, tick in due:
            if tick is None:
                continue
            try:
                if await self._fire(job_id, tick, now):
                    fired += 1
            except Exception:
                log.exception("scheduled run of job %s failed to start", job_id)
        async with self.db.session() as session:
            self._next = await session.scalar(select(func.min(Job.next_fire_at)))
        return fired

    async def _fire(self, job_id: int, tick: datetime, now: datetime) -> bool:
        async with self.db.session() as session:
            job = await session.get(Job, job_id)
        if job is None:
            return False
        following = next_fire(job.settings, max(now, tick))

        async def advance(session: AsyncSession, run: JobRun | None = None) -> None:
            result = await session.execute(
                update(Job)
                .where(Job.job_id == job_id, Job.next_fire_at == tick)
                .values(next_fire_at=following, last_fired_at=tick)
            )
            if getattr(result, "rowcount", 1) != 1:
                raise _AlreadyFired()

        try:
            new = job_run(
                job,
                trigger=TriggerType.PERIODIC,
                creator_user_name=job.run_as_user_name or job.creator_user_name,
            )
        except KilnError as exc:
            # A schedule on a job that cannot run (no tasks): move on without a run.
            log.warning("job %s: scheduled tick skipped: %s", job_id, exc.message)
            async with self.db.session() as session:
                try:
                    await advance(session)
                    await session.commit()
                except _AlreadyFired:
                    await session.rollback()
            return False
        try:
            await self.engine.create_run(new, advance)
        except _AlreadyFired:
            return False
        return True
