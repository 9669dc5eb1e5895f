"""`NotebookRuns`: notebook runs on a cluster, each in a fresh execution context.

A run reads its notebook as its user, gets a context of its own on the cluster, runs every
cell there through the notebook runner, and ends SUCCESS (with the exit value), FAILED (with
the error and its trace), TIMEDOUT or CANCELED; its context is destroyed at the end whatever
happened. The run's notebook with outputs stays readable (and exportable as JUPYTER or HTML)
while the run goes on and after it ends. `dbutils.notebook.run` reaches this through Kiln's
notebook-runs API; the jobs service calls `start`/`run` directly.

Runs live in this process (a control-plane restart forgets them; their contexts are destroyed
with their cluster): the jobs service keeps what must outlive it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kiln.compute.notebook_runs.export import notebook_html
from kiln.compute.notebook_runs.host import (
    ContextGateway,
    NotebookSources,
    RunHost,
    check_notebook,
)
from kiln.compute.notebook_runs.idle import IdleContexts
from kiln.driver.dbutils import RunBinding
from kiln.driver.notebook import NotebookRunner, RunOutcome, RunResultState
from kiln.errors import InvalidParameterValue, ResourceDoesNotExist
from kiln.paths import normalize_absolute_path
from kiln.principal import Principal
from kiln.store import Database

__all__ = ["NotebookRun", "NotebookRunRequest", "NotebookRuns", "RunState", "notebook_runs"]

if TYPE_CHECKING:
    from kiln.compute.service import Compute

log = logging.getLogger("kiln.compute.notebook_runs")

# Finished runs kept for `get` and `export` (the oldest finished ones go first, a tenth at a
# time).
MAX_FINISHED_RUNS = 1000
MAX_WAIT_SECONDS = 60.0
MAX_PARAMETERS = 1000
EXPORT_FORMATS = ("JUPYTER", "HTML")
# An idle context this young is taken without asking the driver whether it still runs.
REUSE_UNCHECKED_SECONDS = 1.0
# How long a stopping control plane spends destroying idle contexts.
STOP_SECONDS = 10.0


class RunState:
    """Where a notebook run is: PENDING, RUNNING, then one of Databricks' result states."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    TERMINAL = frozenset(s.value for s in RunResultState)


@dataclass(frozen=True, slots=True)
class NotebookRunRequest:
    """What to run: a notebook on a cluster, its parameters and time limit."""

    cluster_id: str
    notebook_path: str
    parameters: dict[str, str] = field(default_factory=dict)
    # 0: no limit.
    timeout_seconds: int = 0
    # Upstream task values ({task_key: {key: value}}) when the run is a job task.
    task_values: dict[str, dict[str, Any]] | None = None
    task_key: str | None = None
    parent_run_id: str | None = None
    # Runs with the same snapshot key (the iterations of one for_each) read each notebook
    # once, as the first of them found it.
    snapshot: str | None = None


@dataclass
class NotebookRun:
    """One run and, once it ended, its outcome."""

    run_id: str
    request: NotebookRunRequest
    principal: Principal
    state: str = RunState.PENDING
    context_id: str | None = None
    outcome: RunOutcome | None = None
    runner: NotebookRunner | None = None
    started_at: float = field(default_factory=time.time)
    ended_at: float | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    @property
    def finished(self) -> bool:
        """Whether the run has ended."""
        return self.state in RunState.TERMINAL

    def notebook(self) -> dict[str, Any] | None:
        """The run's notebook with its outputs so far (None before it was read)."""
        if self.outcome is not None and self.outcome.notebook is not None:
            return self.outcome.notebook
        return self.runner.notebook() if self.runner is not None else None


def _validate(request: NotebookRunRequest) -> NotebookRunRequest:
    path = normalize_absolute_path(request.notebook_path, what="notebook_path")
    if not isinstance(request.cluster_id, str) or not request.cluster_id:
        raise InvalidParameterValue("cluster_id is required.")
    if not isinstance(request.timeout_seconds, int) or request.timeout_seconds < 0:
        raise InvalidParameterValue("timeout_seconds must be an integer >= 0.")
    if len(request.parameters) > MAX_PARAMETERS or not all(
        isinstance(k, str) and k and isinstance(v, str) for k, v in request.parameters.items()
    ):
        raise InvalidParameterValue("base_parameters must map non-empty names to string values.")
    return NotebookRunRequest(
        cluster_id=request.cluster_id,
        notebook_path=path,
        parameters=dict(request.parameters),
        timeout_seconds=request.timeout_seconds,
        task_values=request.task_values,
        task_key=request.task_key,
        parent_run_id=request.parent_run_id,
        snapshot=request.snapshot,
    )


class NotebookRuns:
    """Every notebook run of this control plane."""

    def __init__(
        self, db: Database, gateway: ContextGateway, idle: IdleContexts | None = None
    ) -> None:
        self.db = db
        self.gateway = gateway
        self.idle = idle or IdleContexts()
        self.sources = NotebookSources()
        self._runs: OrderedDict[str, NotebookRun] = OrderedDict()

    async def start(
        self,
        principal: Principal,
        request: NotebookRunRequest,
        ready: Callable[[NotebookRun], Awaitable[None]] | None = None,
    ) -> NotebookRun:
        """Check the request, get a context on the cluster and start the run in the background;
        `ready` (a job task recording that it runs) is awaited before the first command."""
        request = _validate(request)
        snapshot = request.snapshot
        if snapshot is None or (
            self.sources.get(snapshot, principal.user_id, request.notebook_path) is None
        ):
            await check_notebook(self.db, principal, request.notebook_path)
        context_id = await self._context(principal, request.cluster_id)
        run = NotebookRun(
            run_id=secrets.token_hex(8),
            request=request,
            principal=principal,
            context_id=context_id,
        )
        self._runs[run.run_id] = run
        self._forget_old()
        run.task = asyncio.create_task(
            self._drive(run, ready), name=f"kiln-notebook-run-{run.run_id}"
        )
        return run

    async def run(self, principal: Principal, request: NotebookRunRequest) -> NotebookRun:
        """Run a notebook to its end (the jobs service's entry point)."""
        run = await self.start(principal, request)
        await run.done.wait()
        return run

    async def _drive(
        self, run: NotebookRun, ready: Callable[[NotebookRun], Awaitable[None]] | None = None
    ) -> None:
        request = run.request
        assert run.context_id is not None
        host = RunHost(
            self.db,
            self.gateway,
            run.principal,
            request.cluster_id,
            run.context_id,
            self.sources,
            request.snapshot,
        )
        binding = RunBinding(
            notebook_path=request.notebook_path,
            run_id=run.run_id,
            parameters=request.parameters,
            task_values=request.task_values,
            task_key=request.task_key,
        )
        run.runner = NotebookRunner(host, binding)
        run.state = RunState.RUNNING
        # Only a run that ended by itself leaves its context fit for another run.
        reusable = False
        try:
            async with asyncio.timeout(request.timeout_seconds or None):
                if ready is not None:
                    await ready(run)
                outcome = await run.runner.run()
            reusable = outcome.state in (RunResultState.SUCCESS, RunResultState.FAILED)
        except TimeoutError:
            outcome = self._partial(
                run,
                RunResultState.TIMEDOUT,
                f"Notebook {request.notebook_path} timed out after {request.timeout_seconds} s.",
            )
        except asyncio.CancelledError:
            outcome = self._partial(run, RunResultState.CANCELED, "The run was cancelled.")
        except Exception as exc:
            log.exception("notebook run %s failed", run.run_id)
            outcome = self._partial(run, RunResultState.FAILED, f"The run failed: {exc}")
        finally:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._release(run, reusable))
        run.outcome = outcome
        run.state = outcome.state.value
        run.ended_at = time.time()
        run.done.set()

    async def _context(self, principal: Principal, cluster_id: str) -> str:
        """An idle context of this user on this cluster, else a new one."""
        await self._expire()
        while (idle := self.idle.take(cluster_id, principal.user_id)) is not None:
            # A context left moments ago is alive; one idle for longer is asked (its cluster
            # may have restarted since).
            fresh = time.monotonic() - idle.since < REUSE_UNCHECKED_SECONDS
            if fresh or await self.gateway.alive(principal, cluster_id, idle.context_id):
                return idle.context_id
            await self._destroy(principal, cluster_id, idle.context_id)
        return await self.gateway.create(principal, cluster_id)

    async def _release(self, run: NotebookRun, reusable: bool) -> None:
        """Keep the run's context for the next run, or destroy it."""
        assert run.context_id is not None
        cluster_id = run.request.cluster_id
        if reusable and self.idle.put(cluster_id, run.principal, run.context_id):
            return
        await self._destroy(run.principal, cluster_id, run.context_id)

    async def _destroy(self, principal: Principal, cluster_id: str, context_id: str) -> None:
        with contextlib.suppress(Exception):
            await self.gateway.destroy(principal, cluster_id, context_id)

    async def _expire(self, everything: bool = False) -> None:
        gone = self.idle.drain() if everything else self.idle.expired()
        for entry in gone:
            await self._destroy(entry.principal, entry.cluster_id, entry.context_id)

    def _partial(self, run: NotebookRun, state: RunResultState, error: str) -> RunOutcome:
        runner = run.runner
        return RunOutcome(
            state=state,
            error=error,
            task_values=dict(runner.task_values) if runner else {},
            notebook=runner.notebook() if runner else None,
        )

    def _forget_old(self) -> None:
        # Checked only once the runs outnumber the limit, and then cut well below it: a start
        # does not go through every finished run (a for_each starts one per iteration).
        if len(self._runs) <= MAX_FINISHED_RUNS:
            return
        finished = [r for r in self._runs.values() if r.finished]
        keep = MAX_FINISHED_RUNS - MAX_FINISHED_RUNS // 10
        for run in finished[: max(0, len(finished) - keep)]:
            del self._runs[run.run_id]

    def get(self, principal: Principal, run_id: str) -> NotebookRun:
        """A run its user (or an admin) can see."""
        run = self._runs.get(run_id) if isinstance(run_id, str) else None
        if run is None or not (principal.is_admin or principal.user_id == run.principal.user_id):
            raise ResourceDoesNotExist(f"Notebook run {run_id} does not exist.")
        return run

    async def wait(self, principal: Principal, run_id: str, seconds: float) -> NotebookRun:
        """The run once it ended, or after `seconds` (at most a minute), whichever is first."""
        run = self.get(principal, run_id)
        if seconds < 0:
            raise InvalidParameterValue("wait_seconds must be >= 0.")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(run.done.wait(), min(seconds, MAX_WAIT_SECONDS))
        return run

    async def cancel(self, principal: Principal, run_id: str) -> NotebookRun:
        """Cancel a run (its running command is cancelled and its context destroyed)."""
        run = self.get(principal, run_id)
        if run.task is not None and not run.task.done():
            run.task.cancel()
            await asyncio.wait({run.task})
        return run

    def export(self, principal: Principal, run_id: str, fmt: str) -> tuple[bytes, str]:
        """The run's notebook with outputs as JUPYTER (.ipynb) or HTML; (content, file name)."""
        if fmt not in EXPORT_FORMATS:
            raise InvalidParameterValue(
                f"Export format {fmt!r} is not supported for runs; use JUPYTER or HTML."
            )
        run = self.get(principal, run_id)
        notebook = run.notebook()
        if notebook is None:
            raise ResourceDoesNotExist(f"Notebook run {run_id} has no notebook yet.")
        name = run.request.notebook_path.rsplit("/", 1)[-1]
        if fmt == "HTML":
            return notebook_html(notebook, name).encode(), f"{name}.html"
        text = json.dumps(notebook, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
        return text.encode(), f"{name}.ipynb"

    async def stop(self) -> None:
        """Cancel every run in flight (the server is stopping)."""
        tasks = [r.task for r in self._runs.values() if r.task is not None and not r.task.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        # Idle contexts would outlive this control plane in their drivers, with live tokens.
        with contextlib.suppress(Exception):
            async with asyncio.timeout(STOP_SECONDS):
                await self._expire(everything=True)


def notebook_runs(compute: Compute) -> NotebookRuns:
    """The notebook runs of a running control plane (held, and stopped, by `compute`)."""
    return compute.notebook_runs
