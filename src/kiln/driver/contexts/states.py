"""The lifecycles of execution contexts and commands: Databricks' values, transitions as data.

`transition()` is the only writer of a command's or a context's `status`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol, TypeVar

__all__ = [
    "COMMAND_TRANSITIONS",
    "CONTEXT_TRANSITIONS",
    "TERMINAL_COMMAND_STATES",
    "CommandStatus",
    "ContextStatus",
    "IllegalTransition",
    "transition",
]


class CommandStatus(StrEnum):
    """`CommandStatus` of the Command Execution API 1.2."""

    QUEUED = "Queued"
    RUNNING = "Running"
    CANCELLING = "Cancelling"
    FINISHED = "Finished"
    CANCELLED = "Cancelled"
    ERROR = "Error"


class ContextStatus(StrEnum):
    """`ContextStatus` of the Command Execution API 1.2."""

    PENDING = "Pending"
    RUNNING = "Running"
    ERROR = "Error"


COMMAND_TRANSITIONS: dict[CommandStatus, frozenset[CommandStatus]] = {
    CommandStatus.QUEUED: frozenset(
        {CommandStatus.RUNNING, CommandStatus.CANCELLED, CommandStatus.ERROR}
    ),
    CommandStatus.RUNNING: frozenset(
        {
            CommandStatus.CANCELLING,
            CommandStatus.FINISHED,
            CommandStatus.CANCELLED,
            CommandStatus.ERROR,
        }
    ),
    # A cancel can lose the race with the command's own end.
    CommandStatus.CANCELLING: frozenset(
        {CommandStatus.CANCELLED, CommandStatus.FINISHED, CommandStatus.ERROR}
    ),
    CommandStatus.FINISHED: frozenset(),
    CommandStatus.CANCELLED: frozenset(),
    CommandStatus.ERROR: frozenset(),
}
TERMINAL_COMMAND_STATES = frozenset(s for s, nxt in COMMAND_TRANSITIONS.items() if not nxt)

CONTEXT_TRANSITIONS: dict[ContextStatus, frozenset[ContextStatus]] = {
    ContextStatus.PENDING: frozenset({ContextStatus.RUNNING, ContextStatus.ERROR}),
    # Running -> Pending: its Python restarts (`restartPython`, `%pip`).
    ContextStatus.RUNNING: frozenset({ContextStatus.PENDING, ContextStatus.ERROR}),
    ContextStatus.ERROR: frozenset(),
}


class IllegalTransition(Exception):
    """A status change the lifecycle does not allow (a bug, never a client error)."""


S = TypeVar("S", CommandStatus, ContextStatus)


class _HasStatus(Protocol[S]):
    status: S


def transition(record: _HasStatus[S], target: S) -> None:
    """Move `record` to `target` along its lifecycle's transitions."""
    current = record.status
    if current == target:
        return
    table: dict[S, frozenset[S]] = (
        COMMAND_TRANSITIONS if isinstance(target, CommandStatus) else CONTEXT_TRANSITIONS
    )
    if target not in table[current]:
        raise IllegalTransition(f"{current.value} -> {target.value}")
    record.status = target
