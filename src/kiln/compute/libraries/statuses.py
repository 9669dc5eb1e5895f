"""Library install statuses (Databricks' `LibraryInstallStatus` values) and their transitions.

`transition()` is the only code that assigns a library row's `status`: statuses are data, and
a move the table does not list is a bug, refused loudly.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol

__all__ = ["TRANSITIONS", "LibraryStatus", "StatusHolder", "can_transition", "transition"]


class LibraryStatus(StrEnum):
    """`LibraryFullStatus.status`."""

    PENDING = "PENDING"
    RESOLVING = "RESOLVING"
    INSTALLING = "INSTALLING"
    INSTALLED = "INSTALLED"
    FAILED = "FAILED"
    UNINSTALL_ON_RESTART = "UNINSTALL_ON_RESTART"
    SKIPPED = "SKIPPED"
    RESTORED = "RESTORED"


_S = LibraryStatus
# Every status may be marked for removal; every settled one goes back to PENDING when the
# cluster (re)starts and its environment is rebuilt.
TRANSITIONS: dict[LibraryStatus, frozenset[LibraryStatus]] = {
    _S.PENDING: frozenset(
        {_S.RESOLVING, _S.INSTALLING, _S.FAILED, _S.SKIPPED, _S.UNINSTALL_ON_RESTART}
    ),
    _S.RESOLVING: frozenset({_S.INSTALLING, _S.PENDING, _S.FAILED, _S.UNINSTALL_ON_RESTART}),
    _S.INSTALLING: frozenset({_S.INSTALLED, _S.PENDING, _S.FAILED, _S.UNINSTALL_ON_RESTART}),
    _S.INSTALLED: frozenset({_S.PENDING, _S.UNINSTALL_ON_RESTART}),
    _S.FAILED: frozenset({_S.PENDING, _S.UNINSTALL_ON_RESTART}),
    _S.SKIPPED: frozenset({_S.PENDING, _S.UNINSTALL_ON_RESTART}),
    _S.RESTORED: frozenset({_S.PENDING, _S.INSTALLED, _S.UNINSTALL_ON_RESTART}),
    # Installing a library again before the restart that would remove it keeps it.
    _S.UNINSTALL_ON_RESTART: frozenset({_S.PENDING}),
}


class StatusHolder(Protocol):
    """A library row: its status and messages."""

    status: str
    messages: list[str]


def can_transition(current: LibraryStatus | str, target: LibraryStatus) -> bool:
    """Whether a library may move from `current` to `target`."""
    return target in TRANSITIONS[LibraryStatus(current)]


def transition(holder: StatusHolder, target: LibraryStatus, *messages: str) -> LibraryStatus:
    """Move `holder` to `target` with new messages (the one place `.status` is assigned)."""
    current = LibraryStatus(holder.status)
    if target not in TRANSITIONS[current]:
        raise ValueError(f"a library cannot move from {current.value} to {target.value}")
    holder.status = target.value
    holder.messages = list(messages)
    return current
