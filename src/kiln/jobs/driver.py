"""`RunDriver`: drives one admitted job run from its record to its end.

Each pass loads the run and the current attempt of every task from the store, records the
outcomes executors reported, asks the planner what to do, applies it and commits; then it
starts the executors it launched and waits until an executor ends, someone wakes it (a cancel,
a repair) or a timer (a retry, the run's timeout) is due. The store is the truth: a driver
keeps nothing a restart would need. While only its own executors reported (a for_each going
through its iterations), a pass goes on from the records it committed last instead of reading
every attempt again; anyone else who writes the run wakes it with `look_again`, and the next
pass reads everything.

Only the driver writes a task run's state, except that an executor marks its own attempt
RUNNING (with the checkpoint that finds its work again) and reports progress messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import inspect, select
from sqlalchemy.ext.asyncio import AsyncSession

from kiln.jobs.executor import Attempt, Executor
from kiln.jobs.launch import parameter_map
from kiln.jobs.outputs import check_values, output_of
from kiln.jobs.planner import (
    Action,
    Cancel,
    Evaluate,
    Expand,
    FinishForEach,
    FinishRun,
    Launch,
    Skip,
    plan,
)
from kiln.jobs.records import changes, loaded_as_inserted, mark_written, outputs_insert
from kiln.jobs.references import ReferenceContext, UnresolvedReference
from kiln.jobs.resolve import evaluate_condition, for_each_inputs, resolve_task
from kiln.jobs.run_facts import next_timer, notice, reference_context, retries, task_facts
from kiln.jobs.runners.base import TaskOutcome
from kiln.jobs.spec import task_kind
from kiln.jobs.states import TERMINAL_STATES, LifeCycleState, ResultState, transition
from kiln.jobs.webhooks import event_for_result
from kiln.store.models import JobRun, JobTaskOutput, JobTaskRun, now_utc

if TYPE_CHECKING:
    from kiln.jobs.engine import JobsEngine

__all__ = ["RunDriver"]

log = logging.getLogger("kiln.jobs")

_L = LifeCycleState
_R = ResultState


class RunDriver:
    """Drives one run; created by the engine when the run is admitted (or after a restart)."""

    def __init__(self, engine: JobsEngine, run_id: int) -> None:
        self.engine = engine
        self.run_id = run_id
        self.wake = asyncio.Event()
        self._outcomes: dict[int, TaskOutcome] = {}
        self._executing: dict[int, asyncio.Task[None]] = {}
        self._cancelled: dict[int, ResultState] = {}
        self.executor = Executor(engine, run_id)
        # The records the last pass committed, and whether someone else wrote since.
        self._run: JobRun | None = None
        self._rows: list[JobTaskRun] = []
        self._stale = True
        # The outputs this pass records (inserted with its changes).
        self._outputs: list[JobTaskOutput] = []
        # Kept task runs that had ended when they were last written: no pass changes them.
        self._settled: set[int] = set()

    def look_again(self) -> None:
        """Someone else changed the run (a cancel, a repair): read it all on the next pass."""
        self._stale = True
        self.wake.set()

    # -- the loop --------------------------------------------------------------------------

    async def run(self) -> None:
        """Pass until the run ends (or the engine stops)."""
        try:
            while True:
                self.wake.clear()
                try:
                    finished, delay = await self._pass()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("job run %s: pass failed", self.run_id)
                    finished, delay = False, 2.0
                    self._stale = True
                if finished:
                    return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), delay)
        except asyncio.CancelledError:
            tasks = list(self._executing.values())
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise

    async def _pass(self) -> tuple[bool, float | None]:
        launches: list[Attempt] = []
        notices: list[dict[str, Any]] = []
        finished = False
        self._outputs = []
        async with self._session() as session:
            run, rows, kept = await self._load(session)
            if run is None:
                return True, None
            life = LifeCycleState(run.life_cycle_state)
            if life in TERMINAL_STATES or life == _L.QUEUED:
                return True, None
            now = now_utc()
            for row in rows:
                # An attempt this process claimed but no executor of this driver holds (the
                # driver was restarted): resume or end it as after a restart.
                if (
                    row.executor == self.engine.owner
                    and row.run_id not in self._executing
                    and row.run_id not in self._outcomes
                    and row.life_cycle_state in (_L.PENDING, _L.RUNNING)
                ):
                    self.engine.recover_task(row, now)
            # Outcomes leave memory only once the pass that records them has committed.
            recorded = dict(self._outcomes)
            for task_run_id, outcome in recorded.items():
                ended = next((r for r in rows if r.run_id == task_run_id), None)
                if ended is not None:
                    await self._record(session, run, ended, outcome, rows, now, notices)
            cancel_message = self._cancel_message(run, now)
            if cancel_message is not None and run.life_cycle_state in (_L.PENDING, _L.RUNNING):
                transition(run, _L.TERMINATING, cancel_message)
            graph = {
                t["task_key"]: [d["task_key"] for d in t.get("depends_on", [])]
                for t in run.spec.get("tasks", [])
            }
            # Cancels already sent (or with nothing to cancel here yet) are not repeated.
            ignored = set(self._cancelled)
            for _ in range(1_000_000):
                actions = [
                    a
                    for a in plan(rows, graph, now, cancel_message=cancel_message)
                    if not (isinstance(a, Cancel) and a.row.run_id in ignored)
                ]
                if not actions:
                    break
                ignored.update(a.row.run_id for a in actions if isinstance(a, Cancel))
                for action in actions:
                    if isinstance(action, FinishRun):
                        await self._finish(session, run, action, now, notices)
                        finished = True
                        break
                    await self._apply(session, run, rows, action, now, launches, notices)
                if finished or all(_launched(a) for a in actions):
                    # Launches that left their rows executing decide nothing new: the planner
                    # launched all it could, and no task ended.
                    break
            created: list[Any] = []
            if kept and not session.new and inspect(run).detached:
                # Only changes to records kept from the last pass, and outputs: Core statements
                # in one trip (the ORM would visit every record at the flush).
                statements, written = changes([run, *self._unsettled(kept)])
                if self._outputs:
                    statements.append(outputs_insert(self._outputs))
                await self.engine.db.write(statements)
            else:
                if inspect(run).detached:
                    session.add(run)
                session.add_all(self._outputs)
                created = list(session.new)
                statements, written = changes(self._unsettled(kept))
                for statement, parameters in statements:
                    await session.execute(statement, parameters)
                await session.commit()
            self._run, self._rows = run, rows
            loaded_as_inserted(created)
            mark_written(written)
            self._settle(rows)
            delay = next_timer(run, rows, now)
            job_id = run.job_id
        for task_run_id in recorded:
            self._outcomes.pop(task_run_id, None)
        for launch in launches:
            task = asyncio.create_task(
                self._execute(launch), name=f"kiln-job-task-{launch.task_run_id}"
            )
            self._executing[launch.task_run_id] = task
        for sent in notices:
            self.engine.notifier.send(**sent)
        if finished:
            self.engine.run_ended(self.run_id)
            await self.engine.admit_queued(job_id)
        return finished, delay

    @contextlib.asynccontextmanager
    async def _session(self) -> AsyncIterator[AsyncSession]:
        """The pass's session, committed and closed only if it was used: a pass over the
        records kept from the last one writes with Core and never touches it."""
        session = self.engine.db.sessions()
        try:
            yield session
            if session.in_transaction():
                await session.commit()
        except BaseException:
            if session.in_transaction():
                await session.rollback()
            raise
        finally:
            if session.in_transaction() or session.new or len(session.identity_map):
                await session.close()

    async def _load(
        self, session: AsyncSession
    ) -> tuple[JobRun | None, list[JobTaskRun], list[JobTaskRun]]:
        """The run and the current attempt of every task, and the task runs kept from the last
        pass. They are read from the store, or (while only this driver's executors reported
        since) kept from the last pass: then they stay out of this pass's session, their
        changes written with Core at the end of the pass (a for_each's pass changes one or two
        of its many iterations). (A run's job clusters, recorded by the executors that create
        them, are read again when the run ends.)"""
        if not self._stale and self._run is not None:
            return self._run, self._rows, list(self._rows)
        # Cleared before reading: a wake while this pass runs makes the next one read again.
        self._stale = False
        self._run = None
        self._settled.clear()
        run = await session.get(JobRun, self.run_id, populate_existing=True)
        if run is None:
            return None, [], []
        rows = list(
            (
                await session.scalars(
                    select(JobTaskRun)
                    .where(JobTaskRun.job_run_id == self.run_id, JobTaskRun.current.is_(True))
                    .execution_options(populate_existing=True)
                )
            ).all()
        )
        return run, rows, []

    def _unsettled(self, kept: list[JobTaskRun]) -> list[JobTaskRun]:
        return [r for r in kept if r.run_id not in self._settled]

    def _settle(self, rows: list[JobTaskRun]) -> None:
        """Remember the task runs that have ended, as committed: a pass changes a task run
        only before it ends (a repair, which reopens ended ones, makes the driver read
        everything again)."""
        settled = self._settled
        for r in rows:
            # The states are StrEnum members: a plain string is found among them.
            if r.run_id not in settled and r.life_cycle_state in TERMINAL_STATES:
                settled.add(r.run_id)

    def _cancel_message(self, run: JobRun, now: datetime) -> str | None:
        timeout = int(run.spec.get("timeout_seconds") or 0)
        if not run.cancel_requested and timeout:
            started = run.start_time or run.created_at
            history = run.repair_history or []
            if history and history[-1].get("type") == "REPAIR":
                started = datetime.fromtimestamp(
                    history[-1]["start_time"] / 1000, tz=started.tzinfo
                )
            if now >= started + timedelta(seconds=timeout):
                run.cancel_requested = "TIMEDOUT"
        if run.cancel_requested == "TIMEDOUT":
            return f"The run timed out after {timeout} seconds."
        if run.cancel_requested:
            return "The run was canceled."
        return None

    # -- applying the planner's actions ----------------------------------------------------

    def _context(self, run: JobRun, rows: list[JobTaskRun], row: JobTaskRun) -> ReferenceContext:
        engine = self.engine
        return reference_context(run, rows, row, engine.workspace_id, engine.workspace_url)

    def _started(self, run: JobRun, now: datetime, notices: list[dict[str, Any]]) -> None:
        if run.life_cycle_state == _L.PENDING:
            transition(run, _L.RUNNING, "")
            if "on_start" not in (run.notified or []):
                run.notified = [*(run.notified or []), "on_start"]
                notices.append(notice(run, "on_start"))

    def _end(
        self,
        row: JobTaskRun,
        life: LifeCycleState,
        result: ResultState,
        message: str,
        now: datetime,
    ) -> None:
        if (
            row.life_cycle_state in (_L.BLOCKED, _L.QUEUED, _L.WAITING_FOR_RETRY)
            and life == _L.TERMINATED
        ):
            transition(row, _L.PENDING)
        transition(row, life, message, result)
        row.end_time = now
        row.start_time = row.start_time or now

    async def _apply(
        self,
        session: AsyncSession,
        run: JobRun,
        rows: list[JobTaskRun],
        action: Action,
        now: datetime,
        launches: list[Attempt],
        notices: list[dict[str, Any]],
    ) -> None:
        assert not isinstance(action, FinishRun)
        # The planner reads rows through a protocol; the rows it gets here are this pass's.
        row = action.row
        assert isinstance(row, JobTaskRun)
        if isinstance(action, Skip):
            transition(row, _L.SKIPPED, action.message, action.result)
            row.end_time = now
            return
        if isinstance(action, Cancel):
            task = self._executing.get(row.run_id)
            if task is not None:
                reason = _R.TIMEDOUT if run.cancel_requested == "TIMEDOUT" else _R.CANCELED
                self._cancelled[row.run_id] = reason
                task.cancel()
            return
        if isinstance(action, FinishForEach):
            transition(row, _L.TERMINATED, action.message, action.result)
            row.end_time = now
            return
        self._started(run, now, notices)
        if isinstance(action, Launch) and action.resume:
            row.executor = self.engine.owner
            launches.append(
                self._launch(run, rows, row, (row.resolved or {}).get("spec") or row.spec, True)
            )
            return
        try:
            spec, values = resolve_task(
                row.spec,
                reference_context(
                    run, rows, row, self.engine.workspace_id, self.engine.workspace_url
                ),
                run.overriding_parameters,
            )
        except UnresolvedReference as exc:
            self._end(row, _L.TERMINATED, _R.FAILED, str(exc), now)
            self._output(session, row, {"error": str(exc)})
            return
        row.resolved = {"values": values, "spec": spec}
        if isinstance(action, Evaluate):
            body = spec["condition_task"]
            try:
                outcome = evaluate_condition(body["op"], body["left"], body["right"])
            except ValueError as exc:
                self._end(row, _L.TERMINATED, _R.FAILED, str(exc), now)
                self._output(session, row, {"error": str(exc)})
                return
            row.condition_outcome = "true" if outcome else "false"
            row.running_at = now
            self._end(row, _L.TERMINATED, _R.SUCCESS, "", now)
            return
        if isinstance(action, Expand):
            try:
                inputs = for_each_inputs(spec["for_each_task"]["inputs"])
            except ValueError as exc:
                self._end(row, _L.TERMINATED, _R.FAILED, str(exc), now)
                self._output(session, row, {"error": str(exc)})
                return
            if row.life_cycle_state != _L.PENDING:
                transition(row, _L.PENDING)
            transition(row, _L.RUNNING, "")
            row.start_time = row.running_at = now
            nested = row.spec["for_each_task"]["task"]
            for index, item in enumerate(inputs):
                iteration = JobTaskRun(
                    run_id=_new_id(),
                    job_run_id=run.run_id,
                    task_key=nested["task_key"],
                    parent_task_run_id=row.run_id,
                    iteration=index,
                    input=json.dumps(item),
                    spec=nested,
                    life_cycle_state=_L.QUEUED.value,
                    state_message="",
                    attempt_number=0,
                    current=True,
                    cancel_requested=False,
                    repair_id=row.repair_id,
                    created_at=now,
                    checkpoint={},
                    task_values={},
                )
                session.add(iteration)
                rows.append(iteration)
            return
        # Launch: the executor takes it from here.
        if row.life_cycle_state != _L.PENDING:
            transition(row, _L.PENDING, "")
        row.executor = self.engine.owner
        row.start_time = row.start_time or now
        if row.parent_task_run_id is None and "on_start" in (
            row.spec.get("webhook_notifications") or {}
        ):
            notices.append(notice(run, "on_start", row))
        cluster_id = self._warm_cluster(row, spec)
        if cluster_id is not None:
            # Recorded RUNNING in this pass's transaction (the one that ended the iteration
            # before), before its code can start: a crash after the commit ends it, never runs
            # it again; one before leaves it QUEUED.
            transition(row, _L.RUNNING, "")
            row.running_at = now
            row.cluster_id = cluster_id
        launches.append(self._launch(run, rows, row, spec, False, running=cluster_id is not None))

    def _warm_cluster(self, row: JobTaskRun, spec: dict[str, Any]) -> str | None:
        """The cluster to record a for_each iteration RUNNING on as it is launched: its
        runner starts the code at once (`STARTS_AT_ONCE`) on the for_each's cluster, which
        an iteration had moments ago. None: the executor marks it RUNNING itself."""
        if row.parent_task_run_id is None or not spec.get("existing_cluster_id"):
            return None
        runner = self.engine.runners.get(task_kind(row.spec))
        if not getattr(runner, "STARTS_AT_ONCE", False):
            return None
        cluster_id = self.executor.warm_cluster(row.parent_task_run_id)
        return cluster_id if cluster_id == spec["existing_cluster_id"] else None

    def _launch(
        self,
        run: JobRun,
        rows: list[JobTaskRun],
        row: JobTaskRun,
        spec: dict[str, Any],
        resume: bool,
        running: bool = False,
    ) -> Attempt:
        facts = task_facts(rows)
        return Attempt(
            task_run_id=row.run_id,
            task_key=row.task_key,
            kind=task_kind(row.spec),
            attempt=row.attempt_number,
            spec=spec,
            resume=resume,
            checkpoint=dict(row.checkpoint or {}),
            cluster_id=row.cluster_id,
            start_time=row.start_time or now_utc(),
            parameters=parameter_map(run.job_parameters or []),
            task_values={k: dict(f.values) for k, f in facts.items()},
            run_as_id=run.run_as_id,
            run_as_user_name=run.run_as_user_name,
            job_id=run.job_id,
            run_name=run.run_name,
            job_clusters={
                c["job_cluster_key"]: c["new_cluster"] for c in run.spec.get("job_clusters", [])
            },
            parent_task_run_id=row.parent_task_run_id,
            running=running,
        )

    def _output(
        self,
        session: AsyncSession,
        row: JobTaskRun,
        output: dict[str, Any],
        notebook: dict[str, Any] | None = None,
    ) -> None:
        self._outputs.append(JobTaskOutput(run_id=row.run_id, output=output, notebook=notebook))

    # -- outcomes --------------------------------------------------------------------------

    async def _record(
        self,
        session: AsyncSession,
        run: JobRun,
        row: JobTaskRun,
        outcome: TaskOutcome,
        rows: list[JobTaskRun],
        now: datetime,
        notices: list[dict[str, Any]],
    ) -> None:
        if LifeCycleState(row.life_cycle_state) in TERMINAL_STATES:
            return
        problem = check_values(outcome.task_values)
        if problem is not None and outcome.result == _R.SUCCESS:
            outcome = TaskOutcome.failed(problem, retryable=False)
        output = output_of(outcome)
        if output or outcome.notebook is not None:
            self._output(session, row, output, outcome.notebook)
        row.task_values = outcome.task_values if problem is None else {}
        if retries(run, row, outcome):
            self._end(row, _L.TERMINATED, outcome.result, outcome.message, now)
            row.current = False
            interval = int(row.spec.get("min_retry_interval_millis") or 0)
            retry = JobTaskRun(
                run_id=_new_id(),
                job_run_id=row.job_run_id,
                task_key=row.task_key,
                parent_task_run_id=row.parent_task_run_id,
                iteration=row.iteration,
                input=row.input,
                spec=row.spec,
                attempt_number=row.attempt_number + 1,
                original_attempt_run_id=row.original_attempt_run_id or row.run_id,
                life_cycle_state=_L.WAITING_FOR_RETRY.value,
                state_message=f"Waiting to retry after: {outcome.message}"[:2000],
                retry_at=now + timedelta(milliseconds=interval),
                current=True,
                cancel_requested=False,
                repair_id=row.repair_id,
                created_at=now,
                checkpoint={},
                task_values={},
            )
            session.add(retry)
            rows.remove(row)
            rows.append(retry)
            return
        self._end(row, outcome.life, outcome.result, outcome.message, now)
        if row.parent_task_run_id is None:
            hooks = row.spec.get("webhook_notifications") or {}
            event = event_for_result(row.result_state)
            if event in hooks:
                notices.append(notice(run, event, row))

    async def _finish(
        self,
        session: AsyncSession,
        run: JobRun,
        action: FinishRun,
        now: datetime,
        notices: list[dict[str, Any]],
    ) -> None:
        result, message = action.result, action.message
        if run.cancel_requested == "TIMEDOUT":
            result = _R.TIMEDOUT
            message = f"The run timed out after {run.spec.get('timeout_seconds')} seconds."
            run.user_cancelled_or_timedout = True
        elif run.cancel_requested:
            result = _R.CANCELED
            message = "Run canceled by user."
            run.user_cancelled_or_timedout = True
        transition(run, _L.TERMINATED, message, result)
        run.end_time = now
        run.owner = None
        history = list(run.repair_history or [])
        if history:
            history[-1] = {
                **history[-1],
                "end_time": int(now.timestamp() * 1000),
                "state": {"life_cycle_state": run.life_cycle_state, "result_state": result.value},
            }
            run.repair_history = history
        if inspect(run).detached:
            session.add(run)
        # Executors record the job clusters they create on the run: read them as they are now.
        await session.refresh(run, ["job_clusters"])
        clusters = [c for c in (run.job_clusters or {}).values() if c]
        if clusters:
            await self.engine.clusters.end_run(session, clusters)
        event = event_for_result(result.value)
        key = f"{event}:{len(history)}"
        if key not in (run.notified or []):
            run.notified = [*(run.notified or []), key]
            notices.append(notice(run, event))

    # -- executors -------------------------------------------------------------------------

    async def _execute(self, launch: Attempt) -> None:
        try:
            outcome = await self.executor.run(launch)
        except asyncio.CancelledError:
            if self.engine.stopping:
                raise
            reason = self._cancelled.get(launch.task_run_id, _R.CANCELED)
            message = (
                "The run timed out before this task ended."
                if reason == _R.TIMEDOUT
                else "The task run was canceled."
            )
            outcome = TaskOutcome(reason, message, retryable=False)
        except Exception as exc:
            log.exception("job task run %s failed", launch.task_run_id)
            outcome = TaskOutcome.failed(f"Kiln could not run the task: {exc}")
        self._outcomes[launch.task_run_id] = outcome
        self._executing.pop(launch.task_run_id, None)
        self.wake.set()


def _launched(action: Action) -> bool:
    """Whether an action was a launch that left its task run executing."""
    if not isinstance(action, Launch):
        return False
    row = action.row
    return row.executor is not None and row.life_cycle_state in (_L.PENDING, _L.RUNNING)


def _new_id() -> int:
    from kiln.jobs.engine import new_id

    return new_id()
