"""Command Execution API 1.2: execution contexts and commands on running clusters."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from kiln.compute import execution
from kiln.server.deps import CurrentPrincipal, Session, State
from kiln.server.schemas.execution import (
    CancelCommandRequest,
    CommandStatusResponse,
    ContextIdRequest,
    ContextStatusResponse,
    CreateContextRequest,
    Created,
    ExecuteCommandRequest,
)

router = APIRouter(prefix="/api/1.2", tags=["command-execution"])

ClusterId = Annotated[str | None, Query(alias="clusterId")]
ContextId = Annotated[str | None, Query(alias="contextId")]
CommandId = Annotated[str | None, Query(alias="commandId")]


@router.post("/contexts/create")
async def create_context(
    body: CreateContextRequest, session: Session, state: State, me: CurrentPrincipal
) -> Created:
    """Create an execution context on a running cluster."""
    info = await execution.create_context(
        session, state.compute, me, body.cluster_id, body.language
    )
    return Created(id=info.id)


@router.get("/contexts/status")
async def context_status(
    session: Session,
    state: State,
    me: CurrentPrincipal,
    cluster_id: ClusterId = None,
    context_id: ContextId = None,
) -> ContextStatusResponse:
    """An execution context's status: Pending, Running or Error."""
    info = await execution.context_status(session, state.compute, me, cluster_id, context_id)
    return ContextStatusResponse.of(info)


@router.post("/contexts/destroy")
async def destroy_context(
    body: ContextIdRequest, session: Session, state: State, me: CurrentPrincipal
) -> dict[str, Any]:
    """Destroy an execution context."""
    await execution.destroy_context(session, state.compute, me, body.cluster_id, body.context_id)
    return {}


@router.post("/commands/execute")
async def execute(
    body: ExecuteCommandRequest, session: Session, state: State, me: CurrentPrincipal
) -> Created:
    """Run a command in an execution context."""
    command_id = await execution.execute_command(
        session, state.compute, me, body.cluster_id, body.context_id, body.command, body.language
    )
    return Created(id=command_id)


@router.get("/commands/status", response_model_exclude_none=True)
async def command_status(
    session: Session,
    state: State,
    me: CurrentPrincipal,
    cluster_id: ClusterId = None,
    context_id: ContextId = None,
    command_id: CommandId = None,
) -> CommandStatusResponse:
    """A command's status and, once it ended, its results."""
    info = await execution.command_status(
        session, state.compute, me, cluster_id, context_id, command_id
    )
    return CommandStatusResponse.of(info)


@router.post("/commands/cancel")
async def cancel(
    body: CancelCommandRequest, session: Session, state: State, me: CurrentPrincipal
) -> dict[str, Any]:
    """Cancel a running command."""
    await execution.cancel_command(
        session, state.compute, me, body.cluster_id, body.context_id, body.command_id
    )
    return {}
