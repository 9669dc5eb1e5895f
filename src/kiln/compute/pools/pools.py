"""The Instance Pools API's operations: create, edit, get, list, delete.

Plain async functions over an `AsyncSession`, as the other services; the background work
(starting and stopping instances) is the warm-pool service's, woken once a change commits.
"""

from __future__ import annotations

import secrets
import string
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncSession

from kiln.compute.pools.service import usage_of
from kiln.compute.pools.spec import PoolSpec, PoolState, parse_pool_spec
from kiln.errors import InvalidParameterValue, PermissionDenied, ResourceDoesNotExist
from kiln.principal import Principal
from kiln.store.models import InstancePool, now_utc

if TYPE_CHECKING:
    from kiln.compute.service import Compute

__all__ = [
    "create_pool",
    "delete_pool",
    "edit_pool",
    "get_pool",
    "list_pools",
    "new_pool_id",
]

_ALPHABET = string.ascii_letters + string.digits


def new_pool_id() -> str:
    """A Databricks-shaped pool id: `MMDD-HHMMSS-word12-pool-AbCdEfGh`."""
    now = datetime.now(UTC)
    word = "".join(secrets.choice(string.ascii_lowercase) for _ in range(5))
    suffix = "".join(secrets.choice(_ALPHABET) for _ in range(8))
    return f"{now:%m%d-%H%M%S}-{word}{secrets.randbelow(90) + 10}-pool-{suffix}"


def _wake_after_commit(session: AsyncSession, compute: Compute) -> None:
    def wake(_: object) -> None:
        compute.pools.notify()
        compute.pools.warm.wake()

    event.listen(session.sync_session, "after_commit", wake, once=True)


def _require_manage(principal: Principal, row: InstancePool) -> None:
    if principal.is_admin or (row.owner_id is not None and row.owner_id == principal.user_id):
        return
    raise PermissionDenied(
        f"User {principal.user_name} does not have Manage permission on instance pool "
        f"{row.instance_pool_id}."
    )


async def _row(session: AsyncSession, pool_id: object, *, live: bool = True) -> InstancePool:
    if not isinstance(pool_id, str) or not pool_id:
        raise InvalidParameterValue("instance_pool_id is required.")
    row = await session.get(InstancePool, pool_id)
    if row is None or (live and row.state == PoolState.DELETED):
        raise ResourceDoesNotExist(f"Can't find an instance pool with id: {pool_id}.")
    return row


async def _unique_name(session: AsyncSession, name: str, pool_id: str | None = None) -> None:
    clash = await session.scalar(
        select(InstancePool.instance_pool_id).where(
            InstancePool.instance_pool_name == name,
            InstancePool.state != PoolState.DELETED.value,
            InstancePool.instance_pool_id != (pool_id or ""),
        )
    )
    if clash is not None:
        raise InvalidParameterValue(
            f"instance_pool_name: an instance pool named {name} already exists ({clash})."
        )


async def view(session: AsyncSession, compute: Compute, row: InstancePool) -> dict[str, Any]:
    """Databricks' `GetInstancePool` (and `InstancePoolAndStats`) for one pool."""
    body = dict(row.spec)
    body.update(
        instance_pool_id=row.instance_pool_id,
        state=row.state,
        default_tags={
            "Vendor": "Databricks",
            "InstancePoolCreator": str(row.owner_id or row.creator_user_name),
            "InstancePoolName": row.instance_pool_name,
            "InstancePoolId": row.instance_pool_id,
        },
        stats=(await usage_of(session, row.instance_pool_id)).wire(),
        status={
            "pending_instance_errors": list(compute.pools.errors.get(row.instance_pool_id, []))
        },
    )
    return body


async def create_pool(
    session: AsyncSession, compute: Compute, principal: Principal, body: dict[str, Any]
) -> str:
    """Validate and record a pool; the warm-pool service brings it to min_idle_instances."""
    if not principal.is_admin:
        raise PermissionDenied(
            f"User {principal.user_name} is not allowed to create instance pools."
        )
    spec = parse_pool_spec(body, compute.catalogue)
    await _unique_name(session, spec.instance_pool_name)
    row = InstancePool(
        instance_pool_id=new_pool_id(),
        instance_pool_name=spec.instance_pool_name,
        spec=spec.record,
        state=PoolState.ACTIVE.value,
        creator_user_name=principal.user_name,
        owner_id=principal.user_id or None,
    )
    session.add(row)
    await session.flush()
    _wake_after_commit(session, compute)
    return row.instance_pool_id


async def edit_pool(
    session: AsyncSession, compute: Compute, principal: Principal, body: dict[str, Any]
) -> None:
    """Change a pool's name, sizes, idle timeout or tags; its node type cannot change."""
    row = await _row(session, body.get("instance_pool_id"))
    _require_manage(principal, row)
    spec = parse_pool_spec(body, compute.catalogue, previous=PoolSpec.of(row.spec))
    await _unique_name(session, spec.instance_pool_name, row.instance_pool_id)
    row.spec = spec.record
    row.instance_pool_name = spec.instance_pool_name
    _wake_after_commit(session, compute)


async def get_pool(session: AsyncSession, compute: Compute, pool_id: object) -> dict[str, Any]:
    """One pool with its stats (a deleted pool reads as DELETED)."""
    return await view(session, compute, await _row(session, pool_id, live=False))


async def list_pools(session: AsyncSession, compute: Compute) -> list[dict[str, Any]]:
    """Every pool that is not deleted, with its stats."""
    rows = (
        await session.scalars(
            select(InstancePool)
            .where(InstancePool.state != PoolState.DELETED.value)
            .order_by(InstancePool.created_at)
        )
    ).all()
    return [await view(session, compute, row) for row in rows]


async def delete_pool(
    session: AsyncSession, compute: Compute, principal: Principal, pool_id: object
) -> None:
    """Delete a pool: its idle instances are stopped in the background; clusters running on
    it keep running, and clusters waiting for it fail (INSTANCE_POOL_NOT_FOUND), as on
    Databricks."""
    row = await _row(session, pool_id)
    _require_manage(principal, row)
    row.state = PoolState.DELETED.value
    row.deleted_at = now_utc()
    _wake_after_commit(session, compute)
