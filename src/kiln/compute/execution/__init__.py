"""Execution contexts and commands on running clusters (the Command Execution API 1.2).

Invariants: only a running cluster takes commands, from users who may attach to it (a
dedicated cluster's single user alone); a context belongs to its creator and acts with a token
minted for them, revoked when it is destroyed; the contexts themselves live in the cluster's
driver (`kiln.driver.contexts`), never in the store, so they survive a restart of the control
plane; outputs are nbformat dicts until `results.command_results` makes the 1.2 result.
"""

from kiln.compute.execution.access import CLASSIC, CONNECT, access_mode
from kiln.compute.execution.results import command_results
from kiln.compute.execution.service import (
    MAX_COMMAND_BYTES,
    CommandInfo,
    ContextInfo,
    cancel_command,
    command_route,
    command_status,
    context_status,
    create_context,
    destroy_context,
    execute_command,
    execution_client,
    run_command,
    start_context,
    stop_context,
)

__all__ = [
    "CLASSIC",
    "CONNECT",
    "MAX_COMMAND_BYTES",
    "CommandInfo",
    "ContextInfo",
    "access_mode",
    "cancel_command",
    "command_results",
    "command_route",
    "command_status",
    "context_status",
    "create_context",
    "destroy_context",
    "execute_command",
    "execution_client",
    "run_command",
    "start_context",
    "stop_context",
]
