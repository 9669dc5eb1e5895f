"""Small steps every part of the cluster lifecycle shares: termination reasons, the first step
of a termination, the owner a cluster acts as, and re-reading a cluster row."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from kiln.compute.backends.base import RuntimeHandle
from kiln.compute.events import add_event
from kiln.compute.states import EventType, State, TerminationCode, TerminationType, transition
from kiln.identity import ADMINS_GROUP, Principal
from kiln.identity.users import groups_of_user
from kiln.store.models import Cluster, ClusterRuntime, User, now_utc

__all__ = [
    "begin_termination",
    "handle_of",
    "load_cluster",
    "owner_principal",
    "termination_reason",
]

_SUCCESS = {TerminationCode.USER_REQUEST, TerminationCode.INACTIVITY, TerminationCode.JOB_FINISHED}
_CLIENT = {TerminationCode.INIT_SCRIPT_FAILURE, TerminationCode.INVALID_ARGUMENT}


def termination_reason(code: TerminationCode, **parameters: str) -> dict[str, Any]:
    """Databricks' `TerminationReason` for a code, its type derived from it."""
    if code in _SUCCESS:
        kind = TerminationType.SUCCESS
    elif code in _CLIENT:
        kind = TerminationType.CLIENT_ERROR
    else:
        kind = TerminationType.SERVICE_FAULT
    return {"code": code.value, "type": kind.value, "parameters": dict(parameters)}


def begin_termination(
    session: AsyncSession,
    row: Cluster,
    code: TerminationCode,
    message: str,
    **parameters: str,
) -> None:
    """Move a cluster to TERMINATING with its reason and a TERMINATING event; the supervisor
    stops its processes and completes the move to TERMINATED."""
    reason = termination_reason(code, **parameters)
    transition(row, State.TERMINATING, message)
    row.termination_reason = reason
    if code not in _SUCCESS:
        row.last_state_loss_time = now_utc()
    add_event(session, row.cluster_id, EventType.TERMINATING, reason=reason)


async def load_cluster(session: AsyncSession, cluster_id: str) -> Cluster | None:
    """The cluster row as the database has it now (not a cached copy)."""
    return await session.get(Cluster, cluster_id, populate_existing=True)


async def owner_principal(session: AsyncSession, row: Cluster) -> Principal:
    """Who the cluster acts as when it reads its init scripts: its owner."""
    user = await session.get(User, row.owner_id) if row.owner_id is not None else None
    if user is None:
        # An owner deleted since: act as nobody in particular (shared locations only).
        return Principal(0, row.creator_user_name or "unknown", False, "")
    groups = await groups_of_user(session, user.id)
    is_admin = any(g.display_name == ADMINS_GROUP for g in groups)
    return Principal(user.id, user.user_name, is_admin, "")


def handle_of(row: ClusterRuntime | None) -> RuntimeHandle | None:
    """The backend handle a runtime record holds."""
    if row is None:
        return None
    return RuntimeHandle(
        backend=row.backend,
        data=dict(row.handle or {}),
        control_url=row.control_url,
        secret_path=row.secret_path,
        spark_app_id=row.spark_app_id,
        spark_ui_port=row.spark_ui_port,
    )
