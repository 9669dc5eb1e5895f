"""`JobsEngine`: the long-lived part of the jobs subsystem, held by the running server.

It creates runs (with max_concurrent_runs, queueing and idempotency tokens decided in one
transaction under one lock, so two requests can never both take the last slot), drives each
admitted run with a `RunDriver`, and at start takes over what a previous control plane left:
runs go on from their recorded state, task attempts that can be found again are resumed, and
the others are ended INTERNAL_ERROR with a message instead of being run a second time.

One control plane per store: a restarted server owns every run it finds (as it adopts every
cluster).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from kiln.jobs.runners.base import ClusterProvider, TaskRunner
from kiln.jobs.spec import task_kind
from kiln.jobs.states import (
    ACTIVE_RUN_STATES,
    TERMINAL_STATES,
    LifeCycleState,
    ResultState,
    transition,
)
from kiln.jobs.webhooks import Notifier
from kiln.store import Database
from kiln.store.models import Job, JobRun, JobTaskRun, now_utc

__all__ = ["JobsEngine", "NewRun", "new_id"]

log = logging.getLogger("kiln.jobs")

_L = LifeCycleState


def new_id() -> int:
    """A run, task run or job id: random, one space for all three, exact in JavaScript."""
    return 10**14 + secrets.randbelow(2**53 - 10**14)


@dataclass
class NewRun:
    """Everything a new run records."""

    spec: dict[str, Any]
    run_type: str
    trigger: str
    run_name: str
    creator_user_name: str
    run_as_id: int | None
    run_as_user_name: str
    job_id: int | None = None
    job_parameters: list[dict[str, Any]] = field(default_factory=list)
    overriding_parameters: dict[str, Any] | None = None
    idempotency_key: str | None = None
    parent_run_id: int | None = None
    parent_task_run_id: int | None = None


Extra = Callable[[AsyncSession, JobRun], Awaitable[None]]


class JobsEngine:
    """Runs of every job: creation, admission, drivers, recovery after a restart."""

    def __init__(
        self,
        db: Database,
        runners: Mapping[str, TaskRunner],
        clusters: ClusterProvider,
        *,
        workspace_id: str = "1",
        workspace_url: str = "",
        notifier: Notifier | None = None,
    ) -> None:
        self.db = db
        self.runners = dict(runners)
        self.clusters = clusters
        self.workspace_id = workspace_id
        self.workspace_url = workspace_url
        self.notifier = notifier or Notifier(workspace_id)
        # This process's id: written on the runs it drives and the task runs it executes.
        self.owner = secrets.token_hex(8)
        self.stopping = False
        self.started = False
        self._lock = asyncio.Lock()
        self._drivers: dict[int, asyncio.Task[None]] = {}
        self._driver_objects: dict[int, Any] = {}
        self._ended: dict[int, asyncio.Event] = {}

    @property
    def lock(self) -> asyncio.Lock:
        """Held while runs are created, admitted or repaired (one decision at a time)."""
        return self._lock

    # -- creating runs ---------------------------------------------------------------------

    async def create_run(self, new: NewRun, extra: Extra | None = None) -> tuple[JobRun, bool]:
        """Record a run (PENDING, QUEUED, or SKIPPED when max_concurrent_runs refuses it) with
        a task run per task; `extra` writes in the same transaction. Returns the run and
        whether it was created (False: an earlier run has the same idempotency token)."""
        async with self._lock, self.db.session() as session:
            if new.idempotency_key is not None:
                existing = await session.scalar(
                    select(JobRun).where(JobRun.idempotency_key == new.idempotency_key)
                )
                if existing is not None:
                    return existing, False
            now = now_utc()
            life, result, message, queue_reason = await self._admission(
                session, new.job_id, new.spec
            )
            run = JobRun(
                run_id=new_id(),
                job_id=new.job_id,
                run_name=new.run_name,
                run_type=new.run_type,
                trigger=new.trigger,
                parent_run_id=new.parent_run_id,
                parent_task_run_id=new.parent_task_run_id,
                creator_user_name=new.creator_user_name,
                run_as_id=new.run_as_id,
                run_as_user_name=new.run_as_user_name,
                spec=new.spec,
                job_parameters=new.job_parameters,
                overriding_parameters=new.overriding_parameters,
                idempotency_key=new.idempotency_key,
                life_cycle_state=life.value,
                result_state=result.value if result is not None else None,
                state_message=message,
                queue_reason=queue_reason,
                created_at=now,
                start_time=now if life != _L.QUEUED else None,
                end_time=now if life == _L.SKIPPED else None,
                job_clusters={},
                repair_history=[],
                notified=[],
                user_cancelled_or_timedout=False,
            )
            session.add(run)
            await session.flush()
            if run.life_cycle_state != _L.SKIPPED:
                for task in new.spec.get("tasks", []):
                    session.add(task_row(run.run_id, task))
            if extra is not None:
                await extra(session, run)
            await session.commit()
            created = run
        if created.life_cycle_state == _L.PENDING:
            self.drive(created.run_id)
        elif created.life_cycle_state == _L.SKIPPED:
            self.run_ended(created.run_id)
        return created, True

    async def _admission(
        self, session: AsyncSession, job_id: int | None, spec: dict[str, Any]
    ) -> tuple[LifeCycleState, ResultState | None, str, str | None]:
        """How a new run starts: PENDING, QUEUED behind max_concurrent_runs (queue enabled),
        or SKIPPED; with its result, message and queue reason."""
        if job_id is None:
            return _L.PENDING, None, "", None
        job = await session.get(Job, job_id)
        settings = job.settings if job is not None else spec
        limit = int(settings.get("max_concurrent_runs", 1))
        active = await self._active_count(session, job_id)
        if active < limit:
            return _L.PENDING, None, "", None
        if (spec.get("queue") or settings.get("queue") or {}).get("enabled"):
            return (
                _L.QUEUED,
                None,
                "Queued: the job has reached its maximum concurrent runs.",
                f"The job has {active} active runs and allows {limit} (max_concurrent_runs).",
            )
        return (
            _L.SKIPPED,
            ResultState.MAXIMUM_CONCURRENT_RUNS_REACHED,
            f"Skipping this run because the limit of {limit} maximum concurrent runs has been "
            "reached.",
            None,
        )

    async def _active_count(self, session: AsyncSession, job_id: int) -> int:
        count = await session.scalar(
            select(func.count())
            .select_from(JobRun)
            .where(
                JobRun.job_id == job_id,
                JobRun.life_cycle_state.in_([s.value for s in ACTIVE_RUN_STATES]),
            )
        )
        return int(count or 0)

    async def admit_queued(self, job_id: int | None) -> None:
        """Start the oldest queued runs of a job while it has room (a run of it ended)."""
        if job_id is None:
            return
        admitted: list[int] = []
        async with self._lock, self.db.session() as session:
            job = await session.get(Job, job_id)
            queued = list(
                (
                    await session.scalars(
                        select(JobRun)
                        .where(JobRun.job_id == job_id, JobRun.life_cycle_state == _L.QUEUED)
                        .order_by(JobRun.created_at, JobRun.run_id)
                    )
                ).all()
            )
            if not queued:
                return
            limit = int((job.settings if job else queued[0].spec).get("max_concurrent_runs", 1))
            active = await self._active_count(session, job_id)
            for run in queued:
                if active >= limit:
                    break
                transition(run, _L.PENDING, "")
                run.queue_reason = None
                run.start_time = now_utc()
                admitted.append(run.run_id)
                active += 1
            await session.commit()
        for run_id in admitted:
            self.drive(run_id)

    # -- drivers ---------------------------------------------------------------------------

    def drive(self, run_id: int) -> None:
        """Make sure a driver works on the run (no-op if one does, or while stopping)."""
        if self.stopping or run_id in self._drivers:
            return
        from kiln.jobs.driver import RunDriver

        driver = RunDriver(self, run_id)
        self._driver_objects[run_id] = driver
        task = asyncio.create_task(driver.run(), name=f"kiln-job-run-{run_id}")
        self._drivers[run_id] = task
        task.add_done_callback(lambda _: self._forget(run_id))

    def _forget(self, run_id: int) -> None:
        self._drivers.pop(run_id, None)
        self._driver_objects.pop(run_id, None)

    def wake(self, run_id: int) -> None:
        """Tell a run's driver to look at the run again (a cancel, a repair); start one if
        none works on it."""
        driver = self._driver_objects.get(run_id)
        if driver is not None:
            driver.look_again()
        else:
            self.drive(run_id)

    def run_ended(self, run_id: int) -> None:
        """A run reached a final state: wake whoever waits for it."""
        event = self._ended.pop(run_id, None)
        if event is not None:
            event.set()

    async def wait_run(self, run_id: int) -> JobRun:
        """The run once it has ended."""
        while True:
            event = self._ended.setdefault(run_id, asyncio.Event())
            async with self.db.session() as session:
                run = await session.get(JobRun, run_id)
            if run is None:
                raise LookupError(f"Run {run_id} does not exist.")
            if LifeCycleState(run.life_cycle_state) in TERMINAL_STATES:
                return run
            # A bounded wait: an event missed between the read and the wait costs seconds.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), 5.0)

    async def request_cancel(self, run_id: int, reason: str = "USER") -> bool:
        """Cancel a run: a queued one ends at once, an active one is stopped by its driver.
        Returns whether the run was still going."""
        async with self._lock, self.db.session() as session:
            run = await session.get(JobRun, run_id)
            if run is None or LifeCycleState(run.life_cycle_state) in TERMINAL_STATES:
                return False
            if run.life_cycle_state == _L.QUEUED:
                now = now_utc()
                transition(run, _L.TERMINATED, "Run canceled by user.", ResultState.CANCELED)
                run.user_cancelled_or_timedout = True
                run.end_time = now
                rows = (
                    await session.scalars(select(JobTaskRun).where(JobTaskRun.job_run_id == run_id))
                ).all()
                for row in rows:
                    if LifeCycleState(row.life_cycle_state) not in TERMINAL_STATES:
                        transition(row, _L.SKIPPED, "The run was canceled.", ResultState.CANCELED)
                        row.end_time = now
                await session.commit()
                self.run_ended(run_id)
                return True
            if not run.cancel_requested:
                run.cancel_requested = reason
            await session.commit()
        self.wake(run_id)
        return True

    async def cancel_task(self, job_run_id: int, task_run_id: int) -> None:
        """Cancel one task run (its dependants see it as canceled)."""
        async with self.db.session() as session:
            await session.execute(
                update(JobTaskRun)
                .where(JobTaskRun.run_id == task_run_id)
                .values(cancel_requested=True)
            )
            await session.commit()
        self.wake(job_run_id)

    # -- start and stop --------------------------------------------------------------------

    async def start(self) -> None:
        """Take over the runs a previous control plane left, then drive them."""
        self.stopping = False
        runs = await self.recover()
        self.started = True
        for run_id in runs:
            # A request may have started a driver meanwhile: wake it to see the recovery.
            self.wake(run_id)

    async def recover(self) -> list[int]:
        """Own every unfinished run; resume or end the task runs another process was
        executing. Returns the runs to drive."""
        to_drive: list[int] = []
        now = now_utc()
        async with self.db.session() as session:
            runs = (
                await session.scalars(
                    select(JobRun).where(
                        JobRun.life_cycle_state.not_in([s.value for s in TERMINAL_STATES])
                    )
                )
            ).all()
            for run in runs:
                run.owner = self.owner
                if run.life_cycle_state != _L.QUEUED:
                    to_drive.append(run.run_id)
                rows = (
                    await session.scalars(
                        select(JobTaskRun).where(
                            JobTaskRun.job_run_id == run.run_id,
                            JobTaskRun.current.is_(True),
                            JobTaskRun.executor.is_not(None),
                            JobTaskRun.executor != self.owner,
                        )
                    )
                ).all()
                for row in rows:
                    self.recover_task(row, now)
            await session.commit()
        return to_drive

    def recover_task(self, row: JobTaskRun, now: datetime) -> None:
        """Take over an attempt no live executor holds: unstarted or resumable ones go on
        (their executor is cleared, so the driver launches them again); the others end
        INTERNAL_ERROR instead of running a second time."""
        life = LifeCycleState(row.life_cycle_state)
        if life in TERMINAL_STATES:
            return
        kind = task_kind(row.spec)
        if life == _L.RUNNING and kind not in ("for_each_task", "run_job_task"):
            runner = self.runners.get(kind)
            if runner is None or not runner.resumable(row.checkpoint or {}):
                transition(
                    row,
                    _L.INTERNAL_ERROR,
                    "The Kiln control plane stopped while this task was running. Its outcome "
                    "is unknown, so it was not run again (a task never runs twice); repair "
                    "the run to run it again.",
                    ResultState.FAILED,
                )
                row.end_time = now
                return
        if (
            kind == "run_job_task"
            and life == _L.RUNNING
            and not (row.checkpoint or {}).get("run_id")
        ):
            transition(
                row, _L.INTERNAL_ERROR, "The child run of this task was lost.", ResultState.FAILED
            )
            row.end_time = now
            return
        # Not started yet, or resumable from its checkpoint: this process takes it over.
        row.executor = None

    async def stop(self) -> None:
        """Stop driving (the server is stopping): executors are cancelled without recording
        an outcome, so the next start resumes or ends their tasks like after a crash."""
        self.stopping = True
        tasks = list(self._drivers.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.notifier.close()
        self.started = False


def task_row(
    job_run_id: int,
    task: dict[str, Any],
    *,
    repair_id: int | None = None,
) -> JobTaskRun:
    """The first attempt of a task in a run: PENDING, or BLOCKED on its dependencies."""
    life = _L.BLOCKED if task.get("depends_on") else _L.PENDING
    return JobTaskRun(
        run_id=new_id(),
        job_run_id=job_run_id,
        task_key=task["task_key"],
        spec=task,
        life_cycle_state=life.value,
        state_message="",
        attempt_number=0,
        current=True,
        cancel_requested=False,
        repair_id=repair_id,
        created_at=now_utc(),
        checkpoint={},
        task_values={},
    )


def utc(moment: datetime | None) -> datetime | None:
    """An aware UTC datetime (SQLite hands back naive ones in some paths)."""
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
