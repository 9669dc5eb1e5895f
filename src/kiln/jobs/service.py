"""`Jobs`: the jobs subsystem of a running server (its engine and its scheduler).

Built once at start with the server's settings, store and compute; `start` takes over the
runs a previous control plane left and starts the scheduler, `stop` stops both.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession

from kiln.settings import KilnSettings
from kiln.store import Database

if TYPE_CHECKING:
    from kiln.compute.service import Compute
    from kiln.jobs.engine import JobsEngine
    from kiln.jobs.runners.base import ClusterProvider, TaskRunner
    from kiln.jobs.scheduler import Scheduler

__all__ = ["Jobs"]


class Jobs:
    """The jobs engine and scheduler of one control plane."""

    def __init__(
        self,
        settings: KilnSettings,
        db: Database,
        compute: Compute | None,
        *,
        runners: Mapping[str, TaskRunner] | None = None,
        clusters: ClusterProvider | None = None,
    ) -> None:
        if (runners is None or clusters is None) and compute is None:
            raise ValueError("Jobs needs compute, or runners and clusters of its own")
        host = settings.host if settings.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
        self.base_url = f"http://{host}:{settings.port}"
        self.settings = settings
        self.db = db
        self.compute = compute
        self._runners = runners
        self._clusters = clusters
        # Built on first use: the engine's modules are not imported on the server's start path.
        self._engine: JobsEngine | None = None
        self._scheduler: Scheduler | None = None
        self._starting: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def engine(self) -> JobsEngine:
        """The run engine (built on first use)."""
        if self._engine is None:
            from kiln.jobs.engine import JobsEngine
            from kiln.jobs.webhooks import Notifier

            runners, clusters = self._runners, self._clusters
            if runners is None or clusters is None:
                assert self.compute is not None
                from kiln.jobs.clusters import JobClusters
                from kiln.jobs.runners import default_runners

                runners = default_runners(self.compute) if runners is None else runners
                clusters = JobClusters(self.compute) if clusters is None else clusters
            self._engine = JobsEngine(
                self.db,
                runners,
                clusters,
                workspace_id=self.settings.workspace_id,
                workspace_url=self.base_url,
                notifier=Notifier(self.settings.workspace_id),
            )
        return self._engine

    @property
    def scheduler(self) -> Scheduler:
        """The schedule service (built on first use)."""
        if self._scheduler is None:
            from kiln.jobs.scheduler import Scheduler

            self._scheduler = Scheduler(self.engine, self.db)
        return self._scheduler

    def wake_scheduler_after_commit(self, session: AsyncSession) -> None:
        """Have the scheduler look at the schedules again once `session` commits."""
        event.listen(
            session.sync_session, "after_commit", lambda _: self.scheduler.wake(), once=True
        )

    def after_commit(self, session: AsyncSession, work: Callable[[], Awaitable[object]]) -> None:
        """Run `work` in the background once `session` commits (it must see the change)."""

        def start(_: object) -> None:
            task = asyncio.get_running_loop().create_task(_quietly(work))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        event.listen(session.sync_session, "after_commit", start, once=True)

    def admit_after_commit(self, session: AsyncSession, job_id: int) -> None:
        """Start queued runs of a job once `session` commits (its limit may have grown)."""
        self.after_commit(session, lambda: self.engine.admit_queued(job_id))

    def cancel_after_commit(self, session: AsyncSession, run_ids: list[int]) -> None:
        """Cancel runs once `session` commits (their job was deleted)."""

        async def cancel() -> None:
            for run_id in run_ids:
                await self.engine.request_cancel(run_id)

        self.after_commit(session, cancel)

    async def start(self) -> None:
        """Begin taking over the runs a previous control plane left, and scheduling, in the
        background: the server answers meanwhile (`ready` waits for it)."""
        self._starting = asyncio.create_task(self._start(), name="kiln-jobs-start")

    async def _start(self) -> None:
        try:
            await self.engine.start()
            await self.scheduler.start()
            # Ticks that came due while no server ran fire now, not after the first interval.
            self.scheduler.wake()
        except Exception:
            logging.getLogger("kiln.jobs").exception("the jobs service failed to start")
            raise

    async def ready(self) -> None:
        """Wait until `start` has taken over every run and the scheduler runs."""
        if self._starting is not None:
            await asyncio.shield(self._starting)

    async def stop(self) -> None:
        """Stop the scheduler and the engine (runs resume at the next start)."""
        if self._starting is not None and not self._starting.done():
            self._starting.cancel()
        if self._starting is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._starting
        if self._scheduler is not None:
            await self._scheduler.stop()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._engine is not None:
            await self._engine.stop()


async def _quietly(work: Callable[[], Awaitable[object]]) -> None:
    try:
        await work()
    except Exception:
        logging.getLogger("kiln.jobs").exception("background jobs work failed")
