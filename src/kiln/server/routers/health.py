"""Unauthenticated probes: liveness and the SDK's host-metadata discovery."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from kiln import __version__
from kiln.server.deps import State

router = APIRouter(tags=["health"])


@router.get("/health")
async def health() -> dict[str, str]:
    """200 once the server has finished starting (the lifespan ran before it serves)."""
    return {"status": "ok", "version": __version__}


@router.get("/.well-known/databricks-config")
async def databricks_config(state: State) -> dict[str, Any]:
    """Host metadata databricks-sdk probes on every client creation; no OIDC here."""
    return {"workspace_id": state.settings.workspace_id, "oidc_endpoint": ""}
