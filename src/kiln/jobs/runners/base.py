"""What the jobs engine asks of the code that executes a task and of the clusters it runs on.

The engine decides what runs when (`kiln.jobs.planner`) and records every step; a
`TaskRunner` executes one attempt of one kind of task (a notebook, a Python file, a wheel) on
a cluster a `ClusterProvider` made ready. Tasks that need no cluster (condition, run_job,
for_each) are the engine's own. Unit tests plug in runners and a provider of their own.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from kiln.jobs.states import LifeCycleState, ResultState
from kiln.principal import Principal

__all__ = [
    "ClusterProvider",
    "ClusterRequest",
    "Reporter",
    "TaskContext",
    "TaskOutcome",
    "TaskRunner",
]

Reporter = Callable[[str], Awaitable[None]]


@dataclass
class TaskOutcome:
    """How one attempt of a task ended, and what it left for get-output and later tasks."""

    result: ResultState
    message: str = ""
    life: LifeCycleState = LifeCycleState.TERMINATED
    exit_value: str | None = None
    logs: str | None = None
    error: str | None = None
    error_trace: str | None = None
    task_values: dict[str, Any] = field(default_factory=dict)
    notebook: dict[str, Any] | None = None
    run_job_run_id: int | None = None
    # Whether a failure may be retried (a cancel or an invalid configuration may not).
    retryable: bool = True

    @classmethod
    def failed(
        cls, message: str, *, trace: str | None = None, retryable: bool = True
    ) -> TaskOutcome:
        """A failed attempt with its error."""
        return cls(
            ResultState.FAILED, message, error=message, error_trace=trace, retryable=retryable
        )


@dataclass
class TaskContext:
    """One attempt of one task, as its runner sees it."""

    principal: Principal
    job_id: int | None
    job_run_id: int
    task_run_id: int
    task_key: str
    attempt: int
    # The task's settings with every reference resolved.
    spec: dict[str, Any]
    cluster_id: str | None
    # The job parameters of the run ({name: value}).
    parameters: Mapping[str, str]
    # Upstream tasks' values ({task_key: {key: value}}), for dbutils.jobs.taskValues.get.
    task_values: dict[str, dict[str, Any]]
    timeout_seconds: int
    # The for_each task run this attempt is an iteration of, if any.
    parent_task_run_id: int | None = None
    # A resumed attempt finds what it recorded before the control plane restarted.
    resume: bool = False
    checkpoint: dict[str, Any] = field(default_factory=dict)
    # Mark the attempt RUNNING, recording what finds its work again after a restart.
    started: Callable[[dict[str, Any]], Awaitable[None]] | None = None
    # Record more of that as it becomes known (a command's id).
    save: Callable[[dict[str, Any]], Awaitable[None]] | None = None
    report: Reporter | None = None
    # True while the engine stops (the server is going down): a runner then leaves what it
    # started alone, so the next control plane can resume it, instead of cancelling it.
    stopping: Callable[[], bool] = lambda: False

    async def mark_started(self, checkpoint: dict[str, Any] | None = None) -> None:
        """Tell the engine the task's code starts now."""
        if self.started is not None:
            await self.started(dict(checkpoint or {}))
        self.checkpoint.update(checkpoint or {})

    async def record(self, checkpoint: dict[str, Any]) -> None:
        """Persist more of the checkpoint before relying on it."""
        self.checkpoint.update(checkpoint)
        if self.save is not None:
            await self.save(dict(self.checkpoint))


class TaskRunner(Protocol):
    """Executes one kind of task (the engine holds one per kind).

    A runner whose class sets `STARTS_AT_ONCE = True` starts the task's code as soon as it has
    the cluster, with nothing in between that waits on anything but that cluster, and takes
    nothing from its checkpoint to find its work again (it is never resumable). The engine may
    then record such a task's for_each iterations RUNNING when it launches them on a cluster
    an iteration had moments ago (`mark_started` writes nothing for them).
    """

    def resumable(self, checkpoint: Mapping[str, Any]) -> bool:
        """Whether an attempt that was RUNNING when the control plane stopped can be found
        again from its checkpoint (otherwise it is ended, never run a second time)."""
        ...

    async def run(self, ctx: TaskContext) -> TaskOutcome:
        """Execute (or, with `ctx.resume`, find again and wait for) one attempt. Cancelling
        the call stops what it started (unless `ctx.stopping()`)."""
        ...


@dataclass
class ClusterRequest:
    """The cluster one task attempt needs."""

    principal: Principal
    job_id: int | None
    job_run_id: int
    task_run_id: int
    run_name: str
    task: dict[str, Any]
    # The run's job cluster specs, by job_cluster_key.
    job_clusters: dict[str, dict[str, Any]] = field(default_factory=dict)


class ClusterProvider(Protocol):
    """Clusters for tasks: existing ones started if needed, per-task and per-run job clusters
    created from their specs (and from instance pools), ended when their task or run ends."""

    async def check(
        self,
        session: AsyncSession,
        principal: Principal,
        clusters: list[tuple[str, str]],
        new_clusters: list[tuple[str, dict[str, Any]]],
    ) -> None:
        """400 naming the field for an unknown cluster or pool, or a bad cluster spec."""
        ...

    async def acquire(self, request: ClusterRequest, report: Reporter) -> str:
        """The id of the task's cluster once it runs (starting or creating it first)."""
        ...

    async def release(self, request: ClusterRequest) -> None:
        """The task ended: end the cluster it created for itself (new_cluster), if any."""
        ...

    async def end_run(self, session: AsyncSession, cluster_ids: list[str]) -> None:
        """The run ended: terminate its job clusters (in the run's final transaction)."""
        ...
