"""Instance Pools API, under /api/2.0/instance-pools."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from kiln.compute import pools
from kiln.server.deps import CurrentPrincipal, Session, State
from kiln.server.schemas.pools import (
    CreateInstancePoolRequest,
    CreateInstancePoolResponse,
    EditInstancePoolRequest,
    GetInstancePool,
    InstancePoolIdRequest,
    ListInstancePools,
)

router = APIRouter(prefix="/api/2.0/instance-pools", tags=["instance-pools"])


@router.post("/create", response_model_exclude_none=True)
async def create(
    body: CreateInstancePoolRequest, session: Session, state: State, me: CurrentPrincipal
) -> CreateInstancePoolResponse:
    """Create a pool; its warm instances start in the background."""
    pool_id = await pools.create_pool(session, state.compute, me, body.body())
    return CreateInstancePoolResponse(instance_pool_id=pool_id)


@router.post("/edit")
async def edit(
    body: EditInstancePoolRequest, session: Session, state: State, me: CurrentPrincipal
) -> dict[str, Any]:
    """Change a pool's configuration (not its node type)."""
    await pools.edit_pool(session, state.compute, me, body.body())
    return {}


@router.get("/get", response_model_exclude_none=True)
async def get(
    session: Session,
    state: State,
    me: CurrentPrincipal,
    instance_pool_id: Annotated[str | None, Query()] = None,
) -> GetInstancePool:
    """One pool with its stats."""
    return GetInstancePool.model_validate(
        await pools.get_pool(session, state.compute, instance_pool_id)
    )


@router.get("/list", response_model_exclude_none=True)
async def list_(session: Session, state: State, me: CurrentPrincipal) -> ListInstancePools:
    """Every pool with its stats."""
    rows = await pools.list_pools(session, state.compute)
    return ListInstancePools(instance_pools=[GetInstancePool.model_validate(r) for r in rows])


@router.post("/delete")
async def delete(
    body: InstancePoolIdRequest, session: Session, state: State, me: CurrentPrincipal
) -> dict[str, Any]:
    """Delete a pool; its idle instances stop in the background."""
    await pools.delete_pool(session, state.compute, me, body.instance_pool_id)
    return {}
