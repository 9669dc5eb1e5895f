"""Run and task-run lifecycles (Databricks' exact wire values) and their allowed transitions.

`transition()` is the only code that assigns a run's or task run's `life_cycle_state`: every
change goes through the table below, so a move Databricks never makes is refused loudly.
Persisted values are never renamed.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol

from kiln.errors import InvalidState

__all__ = [
    "ACTIVE_RUN_STATES",
    "FAILED_RESULTS",
    "TERMINAL_STATES",
    "TRANSITIONS",
    "ConditionTaskOp",
    "LifeCycleState",
    "PauseStatus",
    "ResultState",
    "RunIf",
    "RunType",
    "StateHolder",
    "TerminationCode",
    "TerminationType",
    "TriggerType",
    "termination_of",
    "transition",
]


class LifeCycleState(StrEnum):
    """`RunState.life_cycle_state` of a job run or a task run."""

    QUEUED = "QUEUED"
    PENDING = "PENDING"
    BLOCKED = "BLOCKED"
    RUNNING = "RUNNING"
    WAITING_FOR_RETRY = "WAITING_FOR_RETRY"
    TERMINATING = "TERMINATING"
    TERMINATED = "TERMINATED"
    SKIPPED = "SKIPPED"
    INTERNAL_ERROR = "INTERNAL_ERROR"


class ResultState(StrEnum):
    """`RunState.result_state`."""

    SUCCESS = "SUCCESS"
    SUCCESS_WITH_FAILURES = "SUCCESS_WITH_FAILURES"
    FAILED = "FAILED"
    TIMEDOUT = "TIMEDOUT"
    CANCELED = "CANCELED"
    MAXIMUM_CONCURRENT_RUNS_REACHED = "MAXIMUM_CONCURRENT_RUNS_REACHED"
    EXCLUDED = "EXCLUDED"
    UPSTREAM_FAILED = "UPSTREAM_FAILED"
    UPSTREAM_CANCELED = "UPSTREAM_CANCELED"
    DISABLED = "DISABLED"


class TerminationCode(StrEnum):
    """`RunStatus.termination_details.code`: the subset a Kiln run can end with."""

    SUCCESS = "SUCCESS"
    SUCCESS_WITH_FAILURES = "SUCCESS_WITH_FAILURES"
    USER_CANCELED = "USER_CANCELED"
    CANCELED = "CANCELED"
    SKIPPED = "SKIPPED"
    DISABLED = "DISABLED"
    RUN_EXECUTION_ERROR = "RUN_EXECUTION_ERROR"
    INTERNAL_ERROR = "INTERNAL_ERROR"
    CLUSTER_ERROR = "CLUSTER_ERROR"
    DRIVER_ERROR = "DRIVER_ERROR"
    RESOURCE_NOT_FOUND = "RESOURCE_NOT_FOUND"
    INVALID_RUN_CONFIGURATION = "INVALID_RUN_CONFIGURATION"
    MAX_CONCURRENT_RUNS_EXCEEDED = "MAX_CONCURRENT_RUNS_EXCEEDED"
    LIBRARY_INSTALLATION_ERROR = "LIBRARY_INSTALLATION_ERROR"


class TerminationType(StrEnum):
    """`RunStatus.termination_details.type`."""

    SUCCESS = "SUCCESS"
    CLIENT_ERROR = "CLIENT_ERROR"
    INTERNAL_ERROR = "INTERNAL_ERROR"
    CLOUD_FAILURE = "CLOUD_FAILURE"


class RunIf(StrEnum):
    """`Task.run_if`: when a task runs, given how its dependencies ended."""

    ALL_SUCCESS = "ALL_SUCCESS"
    AT_LEAST_ONE_SUCCESS = "AT_LEAST_ONE_SUCCESS"
    NONE_FAILED = "NONE_FAILED"
    ALL_DONE = "ALL_DONE"
    AT_LEAST_ONE_FAILED = "AT_LEAST_ONE_FAILED"
    ALL_FAILED = "ALL_FAILED"


class ConditionTaskOp(StrEnum):
    """`ConditionTask.op`."""

    EQUAL_TO = "EQUAL_TO"
    NOT_EQUAL = "NOT_EQUAL"
    GREATER_THAN = "GREATER_THAN"
    GREATER_THAN_OR_EQUAL = "GREATER_THAN_OR_EQUAL"
    LESS_THAN = "LESS_THAN"
    LESS_THAN_OR_EQUAL = "LESS_THAN_OR_EQUAL"


class PauseStatus(StrEnum):
    """`CronSchedule.pause_status`."""

    PAUSED = "PAUSED"
    UNPAUSED = "UNPAUSED"


class RunType(StrEnum):
    """`Run.run_type`."""

    JOB_RUN = "JOB_RUN"
    SUBMIT_RUN = "SUBMIT_RUN"
    WORKFLOW_RUN = "WORKFLOW_RUN"


class TriggerType(StrEnum):
    """`Run.trigger`: what started a run."""

    PERIODIC = "PERIODIC"
    ONE_TIME = "ONE_TIME"
    RETRY = "RETRY"
    RUN_JOB_TASK = "RUN_JOB_TASK"


_L = LifeCycleState
TERMINAL_STATES: frozenset[LifeCycleState] = frozenset(
    {_L.TERMINATED, _L.SKIPPED, _L.INTERNAL_ERROR}
)
# A job run counts against max_concurrent_runs in these states (a QUEUED one does not).
ACTIVE_RUN_STATES: frozenset[LifeCycleState] = frozenset(
    {_L.PENDING, _L.BLOCKED, _L.RUNNING, _L.WAITING_FOR_RETRY, _L.TERMINATING}
)
# Results that make a dependency "failed" for run_if (a cancel counts apart).
FAILED_RESULTS: frozenset[ResultState] = frozenset(
    {ResultState.FAILED, ResultState.TIMEDOUT, ResultState.UPSTREAM_FAILED}
)

# Databricks' life cycle as the jobs service walks it. A job run: QUEUED -> PENDING ->
# RUNNING -> TERMINATING -> TERMINATED, or SKIPPED when max_concurrent_runs refuses it. A task
# run: BLOCKED (on its dependencies) -> PENDING (cluster, context) -> RUNNING -> TERMINATED;
# SKIPPED when its run_if is not met or its run ends first; a retry attempt starts in
# WAITING_FOR_RETRY. INTERNAL_ERROR ends a task the service lost (a restart during a task that
# cannot be resumed) and a run the service could not finish.
TRANSITIONS: dict[LifeCycleState, frozenset[LifeCycleState]] = {
    _L.QUEUED: frozenset({_L.PENDING, _L.SKIPPED, _L.TERMINATED, _L.INTERNAL_ERROR}),
    _L.BLOCKED: frozenset({_L.PENDING, _L.SKIPPED, _L.TERMINATED, _L.INTERNAL_ERROR}),
    _L.WAITING_FOR_RETRY: frozenset({_L.PENDING, _L.SKIPPED, _L.TERMINATED, _L.INTERNAL_ERROR}),
    _L.PENDING: frozenset(
        {_L.RUNNING, _L.TERMINATING, _L.TERMINATED, _L.SKIPPED, _L.INTERNAL_ERROR}
    ),
    _L.RUNNING: frozenset({_L.TERMINATING, _L.TERMINATED, _L.INTERNAL_ERROR}),
    _L.TERMINATING: frozenset({_L.TERMINATED, _L.INTERNAL_ERROR}),
    # A repair brings an ended run back to life.
    _L.TERMINATED: frozenset({_L.PENDING}),
    _L.SKIPPED: frozenset(),
    _L.INTERNAL_ERROR: frozenset({_L.PENDING}),
}


class StateHolder(Protocol):
    """A job run or task run: its life cycle state, result and message."""

    life_cycle_state: str
    result_state: str | None
    state_message: str


def transition(
    holder: StateHolder,
    target: LifeCycleState,
    message: str | None = None,
    result: ResultState | None = None,
) -> LifeCycleState:
    """Move `holder` to `target` (the one place the life cycle is assigned); INVALID_STATE if
    Databricks never makes that move. A terminal state takes its result with it."""
    current = LifeCycleState(holder.life_cycle_state)
    if current != target and target not in TRANSITIONS[current]:
        raise InvalidState(f"Cannot move a run from {current.value} to {target.value}.")
    holder.life_cycle_state = target.value
    if target in TERMINAL_STATES:
        holder.result_state = result.value if result is not None else None
    elif target in (_L.PENDING, _L.QUEUED, _L.BLOCKED, _L.WAITING_FOR_RETRY):
        holder.result_state = None
    if message is not None:
        holder.state_message = message
    return current


def termination_of(
    life: LifeCycleState, result: ResultState | None, user_canceled: bool = False
) -> tuple[TerminationCode, TerminationType]:
    """The V2 status' termination code and type of an ended run."""
    r = ResultState
    if life == _L.INTERNAL_ERROR:
        return TerminationCode.INTERNAL_ERROR, TerminationType.INTERNAL_ERROR
    if result in (r.SUCCESS, None):
        return TerminationCode.SUCCESS, TerminationType.SUCCESS
    if result == r.SUCCESS_WITH_FAILURES:
        return TerminationCode.SUCCESS_WITH_FAILURES, TerminationType.SUCCESS
    if result == r.CANCELED:
        code = TerminationCode.USER_CANCELED if user_canceled else TerminationCode.CANCELED
        return code, TerminationType.SUCCESS
    if result in (r.EXCLUDED, r.UPSTREAM_FAILED, r.UPSTREAM_CANCELED):
        return TerminationCode.SKIPPED, TerminationType.SUCCESS
    if result == r.DISABLED:
        return TerminationCode.DISABLED, TerminationType.SUCCESS
    if result == r.MAXIMUM_CONCURRENT_RUNS_REACHED:
        return TerminationCode.MAX_CONCURRENT_RUNS_EXCEEDED, TerminationType.CLIENT_ERROR
    return TerminationCode.RUN_EXECUTION_ERROR, TerminationType.CLIENT_ERROR
