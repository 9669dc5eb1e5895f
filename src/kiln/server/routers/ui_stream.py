"""Kiln's command stream (/api/2.0/kiln/commands/stream): a command's outputs as Server-Sent
Events while it runs, for the web notebook.

The Command Execution API 1.2 answers a command's one result once it ended; the notebook wants
every nbformat output, and each as soon as it is produced. The stream long-polls the driver
(which answers at once when the command produced output or ended) and sends an `update` event
with the outputs so far whenever they change, then one `done` event with the final status,
outputs and 1.2 result. Browsers read it with fetch (EventSource cannot send the token).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from kiln.compute import execution
from kiln.errors import KilnError
from kiln.server.deps import CurrentPrincipal, Session, State

router = APIRouter(prefix="/api/2.0/kiln/commands", tags=["web"])

# How long one driver long-poll may be held; a heartbeat comment follows each empty one.
POLL_MS = 1000


def _event(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


@router.get("/stream", response_model=None)
async def stream(
    request: Request,
    session: Session,
    state: State,
    me: CurrentPrincipal,
    cluster_id: Annotated[str | None, Query(alias="clusterId")] = None,
    context_id: Annotated[str | None, Query(alias="contextId")] = None,
    command_id: Annotated[str | None, Query(alias="commandId")] = None,
) -> StreamingResponse:
    """Stream a command's outputs until it ends (errors before the stream are plain JSON)."""
    # The first status is read before the response starts, so bad input is a normal error.
    first = await execution.command_status(
        session, state.compute, me, cluster_id, context_id, command_id, wait_ms=0
    )
    db = state.db

    async def events() -> AsyncIterator[bytes]:
        info = first
        sent: list[dict[str, Any]] | None = None
        while True:
            if info.done:
                yield _event(
                    "done",
                    {
                        "id": info.id,
                        "status": info.status,
                        "outputs": info.outputs,
                        "results": info.results,
                        "error": info.error,
                    },
                )
                return
            if info.outputs != sent:
                sent = info.outputs
                yield _event("update", {"status": info.status, "outputs": info.outputs})
            else:
                yield b": heartbeat\n\n"
            if await request.is_disconnected():
                return
            try:
                async with db.session() as poll:
                    info = await execution.command_status(
                        poll,
                        state.compute,
                        me,
                        cluster_id,
                        context_id,
                        command_id,
                        wait_ms=POLL_MS,
                        since=info.version,
                    )
            except KilnError as exc:
                yield _event("error", {"error_code": exc.error_code, "message": exc.message})
                return

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
