"""FastAPI dependencies: the app state, a unit-of-work session and the acting principal."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from kiln.errors import Unauthenticated
from kiln.identity import Principal
from kiln.server.state import AppState

__all__ = ["CurrentPrincipal", "Session", "State", "get_principal", "get_state"]


# Dependencies are `async def` on purpose: FastAPI runs plain `def` ones in its threadpool,
# a thread hop on every request.
async def get_state(request: Request) -> AppState:
    """The running server's state."""
    state: AppState = request.app.state.kiln
    return state


async def _session(request: Request) -> AsyncIterator[AsyncSession]:
    # scope="function" below: the commit happens before the response is sent, so a client
    # never sees success for a write that then failed to commit.
    state: AppState = request.app.state.kiln
    async with state.db.session() as session:
        yield session


async def get_principal(request: Request) -> Principal:
    """The principal the auth middleware resolved from the request's token."""
    principal = request.scope.get("state", {}).get("principal")
    if not isinstance(principal, Principal):
        raise Unauthenticated("Missing or invalid access token.")
    return principal


State = Annotated[AppState, Depends(get_state)]
Session = Annotated[AsyncSession, Depends(_session, scope="function")]
CurrentPrincipal = Annotated[Principal, Depends(get_principal)]
