"""Executors: one attempt of one task, run outside the run's driver.

An executor gets the task's cluster from the `ClusterProvider`, hands the attempt to the
kind's `TaskRunner` (or runs a run_job_task itself: a child run, recorded before it is waited
for), and enforces the task's timeout. It writes only its own attempt: RUNNING with the
checkpoint that finds its work again, progress messages, the cluster it got.

An iteration of a for_each that the driver recorded RUNNING when it launched it (`running`:
its runner starts the task's code as soon as it has its cluster, and the cluster just ran the
iteration before) is not marked RUNNING again: a for_each's iteration then costs one write to
the store, the driver's, instead of two.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Table, update
from sqlalchemy.ext.asyncio import AsyncSession

from kiln.errors import KilnError
from kiln.jobs.launch import can_manage, job_run, run_as
from kiln.jobs.retry import retry_when_locked
from kiln.jobs.runners.base import ClusterRequest, TaskContext, TaskOutcome
from kiln.jobs.spec import CLUSTER_TASK_KINDS
from kiln.jobs.states import LifeCycleState, ResultState, TriggerType
from kiln.principal import Principal
from kiln.store.models import Job, JobRun, JobTaskRun, now_utc

if TYPE_CHECKING:
    from kiln.jobs.engine import JobsEngine

__all__ = ["MAX_RUN_JOB_DEPTH", "Attempt", "Executor"]

_L = LifeCycleState
_R = ResultState
log = logging.getLogger("kiln.jobs")
# A run_job_task chain deeper than this is surely a job that runs itself.
MAX_RUN_JOB_DEPTH = 10
# A for_each's cluster that one of its iterations had this recently is taken as still running.
WARM_CLUSTER_SECONDS = 1.0
_TASK_RUNS = cast(Table, JobTaskRun.__table__)


@dataclass
class Attempt:
    """What an executor needs, copied from the records when it was launched."""

    task_run_id: int
    task_key: str
    kind: str
    attempt: int
    spec: dict[str, Any]
    resume: bool
    checkpoint: dict[str, Any]
    cluster_id: str | None
    start_time: datetime
    parameters: dict[str, str]
    task_values: dict[str, dict[str, Any]]
    run_as_id: int | None
    run_as_user_name: str
    job_id: int | None
    run_name: str
    job_clusters: dict[str, dict[str, Any]] = field(default_factory=dict)
    parent_task_run_id: int | None = None
    # The driver recorded the attempt RUNNING on `cluster_id` when it launched it.
    running: bool = False


class Executor:
    """Runs attempts of the tasks of one run."""

    def __init__(self, engine: JobsEngine, run_id: int) -> None:
        self.engine = engine
        self.run_id = run_id
        # The run acts as one user: looked up once per driver (and again after a restart).
        self._principals: dict[int | None, Principal] = {}
        # The cluster each for_each's iterations last had, and when (by the for_each's run).
        self._warm: dict[int, tuple[str, float]] = {}

    def warm_cluster(self, parent_task_run_id: int) -> str | None:
        """The cluster an iteration of this for_each had moments ago, if one did."""
        found = self._warm.get(parent_task_run_id)
        if found is None or time.monotonic() - found[1] >= WARM_CLUSTER_SECONDS:
            return None
        return found[0]

    def _had_cluster(self, launch: Attempt, cluster_id: str | None) -> None:
        if launch.parent_task_run_id is not None and cluster_id is not None:
            if len(self._warm) > 1000:
                self._warm.clear()
            self._warm[launch.parent_task_run_id] = (cluster_id, time.monotonic())

    async def _principal(self, launch: Attempt) -> Principal:
        principal = self._principals.get(launch.run_as_id)
        if principal is None:
            async with self.engine.db.session() as session:
                principal = await run_as(session, launch.run_as_id, launch.run_as_user_name)
            self._principals[launch.run_as_id] = principal
        return principal

    async def run(self, launch: Attempt) -> TaskOutcome:
        """The attempt's outcome (cancelling the call stops what it started)."""
        request = self._request(launch)
        try:
            outcome = await self._attempt(launch, request)
        except KilnError as exc:
            outcome = TaskOutcome.failed(exc.message)
        finally:
            own_cluster = launch.kind in CLUSTER_TASK_KINDS and launch.spec.get("new_cluster")
            if own_cluster and not self.engine.stopping:
                await asyncio.shield(self._release(request, launch.task_run_id))
        return outcome

    async def _release(self, request: ClusterRequest, task_run_id: int) -> None:
        try:
            await self.engine.clusters.release(request)
        except Exception:
            log.exception("job task run %s: could not end its cluster", task_run_id)

    def _request(self, launch: Attempt) -> ClusterRequest:
        return ClusterRequest(
            principal=Principal(launch.run_as_id or 0, launch.run_as_user_name, False, ""),
            job_id=launch.job_id,
            job_run_id=self.run_id,
            task_run_id=launch.task_run_id,
            run_name=launch.run_name,
            task=launch.spec,
            job_clusters=launch.job_clusters,
        )

    async def _attempt(self, launch: Attempt, request: ClusterRequest) -> TaskOutcome:
        timeout = int(launch.spec.get("timeout_seconds") or 0)
        remaining = None
        if timeout:
            deadline = launch.start_time + timedelta(seconds=timeout)
            remaining = max(0.0, (deadline - now_utc()).total_seconds())
        try:
            async with asyncio.timeout(remaining):
                principal = await self._principal(launch)
                request.principal = principal
                if launch.kind == "run_job_task":
                    return await self._run_job(launch, principal)
                runner = self.engine.runners.get(launch.kind)
                if runner is None:
                    return TaskOutcome.failed(
                        f"This Kiln server cannot run {launch.kind} tasks.", retryable=False
                    )
                cluster_id = launch.cluster_id
                if launch.kind in CLUSTER_TASK_KINDS and not (launch.resume and cluster_id):
                    cluster_id = await self.engine.clusters.acquire(
                        request, lambda m: self._report(launch.task_run_id, m)
                    )
                    if launch.running and cluster_id != launch.cluster_id:
                        await self._set(launch.task_run_id, cluster_id=cluster_id)
                self._had_cluster(launch, cluster_id)
                ctx = TaskContext(
                    principal=principal,
                    job_id=launch.job_id,
                    job_run_id=self.run_id,
                    task_run_id=launch.task_run_id,
                    task_key=launch.task_key,
                    attempt=launch.attempt,
                    spec=launch.spec,
                    cluster_id=cluster_id,
                    parameters=launch.parameters,
                    task_values=launch.task_values,
                    timeout_seconds=timeout,
                    parent_task_run_id=launch.parent_task_run_id,
                    resume=launch.resume,
                    checkpoint=dict(launch.checkpoint),
                    started=(
                        None
                        if launch.running
                        else lambda cp: self._mark_running(launch.task_run_id, cp, cluster_id)
                    ),
                    save=lambda cp: self._set(launch.task_run_id, checkpoint=cp),
                    report=lambda m: self._report(launch.task_run_id, m),
                    stopping=lambda: self.engine.stopping,
                )
                try:
                    return await runner.run(ctx)
                finally:
                    self._had_cluster(launch, cluster_id)
        except TimeoutError:
            return TaskOutcome(
                _R.TIMEDOUT,
                f"Task {launch.task_key} timed out after {timeout} seconds.",
            )

    async def _set(self, task_run_id: int, **values: Any) -> None:
        async def write() -> None:
            # Core on a plain connection: this runs once or more per attempt.
            async with self.engine.db.engine.begin() as conn:
                await conn.execute(
                    update(_TASK_RUNS)
                    .where(
                        _TASK_RUNS.c.run_id == task_run_id,
                        _TASK_RUNS.c.executor == self.engine.owner,
                    )
                    .values(**values)
                )

        await retry_when_locked(write)

    async def _report(self, task_run_id: int, message: str) -> None:
        await self._set(task_run_id, state_message=message[:4000])

    async def _mark_running(
        self, task_run_id: int, checkpoint: dict[str, Any], cluster_id: str | None
    ) -> None:
        async def write() -> None:
            async with self.engine.db.engine.begin() as conn:
                await conn.execute(
                    update(_TASK_RUNS)
                    .where(
                        _TASK_RUNS.c.run_id == task_run_id,
                        _TASK_RUNS.c.executor == self.engine.owner,
                        _TASK_RUNS.c.life_cycle_state == _L.PENDING.value,
                    )
                    .values(
                        life_cycle_state=_L.RUNNING.value,
                        running_at=now_utc(),
                        state_message="",
                        checkpoint=checkpoint,
                        cluster_id=cluster_id,
                    )
                )

        await retry_when_locked(write)

    async def _run_job(self, launch: Attempt, principal: Principal) -> TaskOutcome:
        body = launch.spec["run_job_task"]
        child_id = launch.checkpoint.get("run_id") if launch.resume else None
        if child_id is None:
            async with self.engine.db.session() as session:
                job = await session.get(Job, body["job_id"])
                if job is None:
                    return TaskOutcome.failed(
                        f"Job {body['job_id']} does not exist.", retryable=False
                    )
                if not can_manage(principal, job):
                    return TaskOutcome.failed(
                        f"{principal.user_name} may not run job {job.job_id}.", retryable=False
                    )
                depth = await _depth(session, self.run_id)
                if depth >= MAX_RUN_JOB_DEPTH:
                    return TaskOutcome.failed(
                        f"run_job_task chains are limited to {MAX_RUN_JOB_DEPTH} levels.",
                        retryable=False,
                    )
                try:
                    new = job_run(
                        job,
                        trigger=TriggerType.RUN_JOB_TASK,
                        creator_user_name=principal.user_name,
                        job_parameters=body.get("job_parameters"),
                        overrides=body,
                        parent_run_id=self.run_id,
                        parent_task_run_id=launch.task_run_id,
                        where="run_job_task.job_parameters",
                    )
                except KilnError as exc:
                    return TaskOutcome.failed(exc.message, retryable=False)

            async def mark(session: AsyncSession, child: JobRun) -> None:
                await session.execute(
                    update(JobTaskRun)
                    .where(
                        JobTaskRun.run_id == launch.task_run_id,
                        JobTaskRun.executor == self.engine.owner,
                    )
                    .values(
                        life_cycle_state=_L.RUNNING.value,
                        running_at=now_utc(),
                        checkpoint={"run_id": child.run_id},
                    )
                )

            child_run, _ = await self.engine.create_run(new, mark)
            child_id = child_run.run_id
        try:
            child = await self.engine.wait_run(child_id)
        except asyncio.CancelledError:
            await asyncio.shield(self.engine.request_cancel(child_id))
            raise
        except LookupError:
            return TaskOutcome.failed(f"The child run {child_id} was deleted.", retryable=False)
        result = child.result_state
        if result in (_R.SUCCESS, _R.SUCCESS_WITH_FAILURES):
            return TaskOutcome(_R.SUCCESS, "", run_job_run_id=child_id)
        if result == _R.CANCELED:
            return TaskOutcome(
                _R.CANCELED, "The child run was canceled.", run_job_run_id=child_id, retryable=False
            )
        message = (
            f"The run {child_id} of job {body['job_id']} ended {result}: {child.state_message}"
        )
        outcome = TaskOutcome.failed(message)
        outcome.run_job_run_id = child_id
        return outcome


async def _depth(session: AsyncSession, run_id: int) -> int:
    depth = 0
    current: int | None = run_id
    while current is not None and depth <= MAX_RUN_JOB_DEPTH:
        run = await session.get(JobRun, current)
        current = run.parent_run_id if run is not None else None
        depth += 1 if current is not None else 0
    return depth
