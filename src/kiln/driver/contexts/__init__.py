"""Execution contexts on the driver: one REPL process each, their commands and the routes.

Invariants: the registry lives in the driver runtime, so contexts survive a crash of the
control plane; a context's commands run one at a time, in order; a context's REPL dying ends
that context only (its jobs cancelled by tag); a context belongs to the user who created it.
"""

from kiln.driver.contexts.context import Command, Context, ContextOwner
from kiln.driver.contexts.manager import ContextManager, SparkHost
from kiln.driver.contexts.process import ReplProcess, ReplUnavailable
from kiln.driver.contexts.states import CommandStatus, ContextStatus, transition

__all__ = [
    "Command",
    "CommandStatus",
    "Context",
    "ContextManager",
    "ContextOwner",
    "ContextStatus",
    "ReplProcess",
    "ReplUnavailable",
    "SparkHost",
    "transition",
]
