"""The Clusters API's services: what each route calls. They validate, change the store and
record events; the supervisor then does the work (start, stop, resize) in the background, so
every call answers at once, as Databricks' does.
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from kiln.compute.cluster_update import apply_mask, parse_update_mask, plan_update
from kiln.compute.events import EventPage, EventQuery, add_event, list_events
from kiln.compute.lifecycle import begin_termination, handle_of
from kiln.compute.permissions import PermissionLevel, require_level
from kiln.compute.service import Compute
from kiln.compute.spec import ClusterSpec, parse_spec
from kiln.compute.states import (
    ACTIVE_STATES,
    ClusterSource,
    EventType,
    State,
    TerminationCode,
    transition,
)
from kiln.compute.views import ClusterView
from kiln.errors import (
    InvalidParameterValue,
    InvalidState,
    ResourceDoesNotExist,
)
from kiln.identity import Principal, require_admin
from kiln.identity.users import get_user_by_name
from kiln.paging import decode_page_token, encode_page_token
from kiln.store.models import Cluster, ClusterRuntime, now_utc

__all__ = [
    "ListFilter",
    "change_owner",
    "cluster_events",
    "create_cluster",
    "edit_cluster",
    "get_cluster",
    "list_clusters",
    "permanent_delete",
    "pin",
    "proxy_target",
    "require_manage",
    "require_restart",
    "resize_cluster",
    "restart_cluster",
    "start_cluster",
    "terminate_cluster",
    "update_cluster",
]

_ID_ALPHABET = string.ascii_lowercase + string.digits
_STATE_ORDER = {
    State.RUNNING: 0,
    State.PENDING: 1,
    State.RESTARTING: 2,
    State.RESIZING: 3,
    State.TERMINATING: 4,
    State.ERROR: 5,
    State.TERMINATED: 6,
    State.UNKNOWN: 7,
}


def new_cluster_id() -> str:
    """A Databricks-shaped cluster id: `MMDD-HHMMSS-xxxxxxxx`."""
    now = datetime.now(UTC)
    suffix = "".join(secrets.choice(_ID_ALPHABET) for _ in range(8))
    return f"{now:%m%d-%H%M%S}-{suffix}"


def _cluster_size(spec: dict[str, Any]) -> dict[str, Any]:
    if "autoscale" in spec:
        return {"autoscale": spec["autoscale"]}
    return {"num_workers": spec.get("num_workers", 0)}


async def _get_row(session: AsyncSession, cluster_id: object) -> Cluster:
    if not isinstance(cluster_id, str) or not cluster_id:
        raise InvalidParameterValue("cluster_id is required.")
    row = await session.get(Cluster, cluster_id, populate_existing=True)
    if row is None or row.deleted_at is not None:
        raise InvalidParameterValue(f"Cluster {cluster_id} does not exist")
    return row


async def require_manage(session: AsyncSession, principal: Principal, row: Cluster) -> None:
    """Raise 403 unless the principal may manage the cluster (CAN_MANAGE)."""
    await require_level(session, principal, row, PermissionLevel.CAN_MANAGE)


async def require_restart(session: AsyncSession, principal: Principal, row: Cluster) -> None:
    """Raise 403 unless the principal may start, restart or terminate the cluster."""
    await require_level(session, principal, row, PermissionLevel.CAN_RESTART)


def _unexpected_state(row: Cluster) -> InvalidState:
    return InvalidState(
        f"Cluster {row.cluster_id} is in unexpected state {State(row.state).value.title()}."
    )


def _spec(compute: Compute, raw: dict[str, Any]) -> ClusterSpec:
    return parse_spec(raw, compute.catalogue, compute.settings.compute.max_workers)


async def _checked_spec(
    session: AsyncSession, compute: Compute, raw: dict[str, Any]
) -> ClusterSpec:
    """A create/edit body validated, its pools checked and their node types filled in."""
    return _spec(compute, await compute.pools.resolve_cluster_body(session, raw))


async def create_cluster(
    session: AsyncSession, compute: Compute, principal: Principal, body: dict[str, Any]
) -> Cluster:
    """Validate and record a new cluster (PENDING); the supervisor starts it."""
    spec = await _checked_spec(session, compute, body)
    source = body.get("cluster_source") or ClusterSource.API.value
    if source not in {s.value for s in ClusterSource}:
        raise InvalidParameterValue(f"cluster_source: unknown source {source!r}.")
    now = now_utc()
    row = Cluster(
        cluster_id=new_cluster_id(),
        cluster_name=spec.cluster_name,
        spec=spec.record,
        state=State.PENDING.value,
        state_message="Starting Spark",
        cluster_source=source,
        creator_user_name=principal.user_name,
        owner_id=principal.user_id or None,
        target_workers=spec.initial_workers,
        created_at=now,
        start_time=now,
        last_activity_time=now,
    )
    session.add(row)
    await session.flush()
    add_event(
        session,
        row.cluster_id,
        EventType.CREATING,
        cluster_size=_cluster_size(spec.record),
        user=principal.user_name,
    )
    compute.wake_after_commit(session)
    return row


async def edit_cluster(
    session: AsyncSession, compute: Compute, principal: Principal, body: dict[str, Any]
) -> None:
    """Replace a cluster's spec; a RUNNING cluster restarts to apply it, as on Databricks."""
    row = await _get_row(session, body.get("cluster_id"))
    await require_manage(session, principal, row)
    if row.state not in (State.RUNNING, State.TERMINATED):
        raise _unexpected_state(row)
    spec = await _checked_spec(
        session, compute, {k: v for k, v in body.items() if k != "cluster_id"}
    )
    _record_edit(session, row, spec, principal)
    row.target_workers = spec.initial_workers
    if row.state == State.RUNNING:
        transition(row, State.RESTARTING, "Restarting Spark to apply the new configuration")
        add_event(session, row.cluster_id, EventType.RESTARTING, user=principal.user_name)
    await session.flush()
    compute.wake_after_commit(session)


def _record_edit(
    session: AsyncSession, row: Cluster, spec: ClusterSpec, principal: Principal
) -> dict[str, Any]:
    """Store a new spec with an EDITED event; the previous spec."""
    previous = row.spec
    row.spec = spec.record
    row.cluster_name = spec.cluster_name
    add_event(
        session,
        row.cluster_id,
        EventType.EDITED,
        previous_attributes={
            k: v for k, v in previous.items() if k not in ("num_workers", "autoscale")
        },
        attributes={k: v for k, v in spec.record.items() if k not in ("num_workers", "autoscale")},
        previous_cluster_size=_cluster_size(previous),
        cluster_size=_cluster_size(spec.record),
        user=principal.user_name,
    )
    return previous


async def update_cluster(
    session: AsyncSession,
    compute: Compute,
    principal: Principal,
    cluster_id: object,
    update_mask: object,
    cluster: object,
) -> None:
    """`clusters/update`: change the fields `update_mask` names. A RUNNING cluster resizes
    when only its size changed, keeps running for its name, tags or autotermination, and
    restarts for anything else; a TERMINATED cluster keeps them for its next start."""
    row = await _get_row(session, cluster_id)
    await require_manage(session, principal, row)
    paths = parse_update_mask(update_mask)
    if cluster is None:
        cluster = {}
    if not isinstance(cluster, dict):
        raise InvalidParameterValue("cluster must be an object.")
    if row.state not in (State.RUNNING, State.TERMINATED):
        raise _unexpected_state(row)
    raw = apply_mask(row.spec, cluster, paths, row.target_workers)
    spec = await _checked_spec(session, compute, raw)
    plan = plan_update(row.spec, spec.record)
    if not plan.changed:
        return
    _record_edit(session, row, spec, principal)
    if row.state == State.TERMINATED:
        row.target_workers = spec.initial_workers
    else:
        if plan.restart:
            row.target_workers = spec.initial_workers
            transition(row, State.RESTARTING, "Restarting Spark to apply the new configuration")
            add_event(session, row.cluster_id, EventType.RESTARTING, user=principal.user_name)
        elif plan.resize:
            _begin_resize(session, row, spec, principal)
    await session.flush()
    compute.wake_after_commit(session)


async def start_cluster(
    session: AsyncSession, compute: Compute, principal: Principal, cluster_id: object
) -> None:
    """Start a TERMINATED cluster again with its recorded spec."""
    row = await _get_row(session, cluster_id)
    await require_restart(session, principal, row)
    if row.state != State.TERMINATED:
        raise _unexpected_state(row)
    spec = _spec(compute, row.spec)
    transition(row, State.PENDING, "Starting Spark")
    row.termination_reason = None
    row.terminated_time = None
    row.start_time = now_utc()
    row.last_activity_time = now_utc()
    row.target_workers = spec.initial_workers
    add_event(session, row.cluster_id, EventType.STARTING, user=principal.user_name)
    await session.flush()
    compute.wake_after_commit(session)


async def restart_cluster(
    session: AsyncSession,
    compute: Compute,
    principal: Principal,
    cluster_id: object,
    restart_user: str | None = None,
) -> None:
    """Restart a RUNNING cluster (refused with INVALID_STATE otherwise, as Databricks does)."""
    row = await _get_row(session, cluster_id)
    await require_restart(session, principal, row)
    if row.state != State.RUNNING:
        raise _unexpected_state(row)
    spec = _spec(compute, row.spec)
    transition(row, State.RESTARTING, "Restarting Spark")
    row.target_workers = spec.initial_workers
    add_event(
        session, row.cluster_id, EventType.RESTARTING, user=restart_user or principal.user_name
    )
    await session.flush()
    compute.wake_after_commit(session)


async def resize_cluster(
    session: AsyncSession,
    compute: Compute,
    principal: Principal,
    cluster_id: object,
    num_workers: object = None,
    autoscale: object = None,
) -> None:
    """Give a RUNNING cluster a new worker count (or autoscale bounds)."""
    row = await _get_row(session, cluster_id)
    await require_manage(session, principal, row)
    if num_workers is None and autoscale is None:
        raise InvalidParameterValue("num_workers: set either num_workers or autoscale.")
    raw = {k: v for k, v in row.spec.items() if k not in ("num_workers", "autoscale")}
    if num_workers is not None:
        raw["num_workers"] = num_workers
    if autoscale is not None:
        raw["autoscale"] = autoscale
    if num_workers is not None and autoscale is not None:
        raise InvalidParameterValue("num_workers: set either num_workers or autoscale, not both.")
    if row.state != State.RUNNING:
        raise _unexpected_state(row)
    # Workers are sized by the spec; single-node markers no longer hold once it has workers.
    if num_workers not in (None, 0) or autoscale is not None:
        raw.pop("is_single_node", None)
        conf = dict(raw.get("spark_conf") or {})
        if conf.get("spark.databricks.cluster.profile") == "singleNode":
            conf.pop("spark.databricks.cluster.profile")
            conf.pop("spark.master", None)
        raw["spark_conf"] = conf
    spec = _spec(compute, raw)
    row.spec = spec.record
    _begin_resize(session, row, spec, principal)
    await session.flush()
    compute.wake_after_commit(session)


def _begin_resize(
    session: AsyncSession, row: Cluster, spec: ClusterSpec, principal: Principal
) -> None:
    """Move a running cluster to RESIZING toward `spec`'s size (autoscale keeps the current
    size within its new bounds), with the RESIZING event."""
    current = row.target_workers
    if spec.autoscale is not None:
        target = min(max(current, spec.autoscale.min_workers), spec.autoscale.max_workers)
    else:
        target = spec.num_workers
    row.target_workers = target
    transition(row, State.RESIZING, "Resizing cluster")
    add_event(
        session,
        row.cluster_id,
        EventType.RESIZING,
        current_num_workers=current,
        target_num_workers=target,
        cause="USER_REQUEST",
        user=principal.user_name,
    )


async def terminate_cluster(
    session: AsyncSession, compute: Compute, principal: Principal, cluster_id: object
) -> None:
    """Terminate a cluster (`clusters/delete`); a no-op once it is terminating or terminated."""
    row = await _get_row(session, cluster_id)
    await require_restart(session, principal, row)
    if row.state in (State.TERMINATING, State.TERMINATED):
        return
    begin_termination(
        session,
        row,
        TerminationCode.USER_REQUEST,
        "Terminated by user",
        username=principal.user_name,
    )
    await session.flush()
    compute.wake_after_commit(session)


async def permanent_delete(
    session: AsyncSession, compute: Compute, principal: Principal, cluster_id: object
) -> None:
    """Terminate a cluster if needed and remove it; it disappears from the API at once."""
    row = await _get_row(session, cluster_id)
    await require_manage(session, principal, row)
    row.deleted_at = now_utc()
    if row.state not in (State.TERMINATING, State.TERMINATED):
        begin_termination(
            session,
            row,
            TerminationCode.USER_REQUEST,
            "Permanently deleted by user",
            username=principal.user_name,
        )
    await session.flush()
    compute.wake_after_commit(session)


async def pin(
    session: AsyncSession, principal: Principal, cluster_id: object, *, pinned: bool
) -> None:
    """Pin or unpin a cluster (admins only, as on Databricks)."""
    require_admin(principal)
    row = await _get_row(session, cluster_id)
    if row.pinned == pinned:
        return
    row.pinned = pinned
    event = EventType.PINNED if pinned else EventType.UNPINNED
    add_event(session, row.cluster_id, event, user=principal.user_name)
    await session.flush()


async def change_owner(
    session: AsyncSession, principal: Principal, cluster_id: object, owner_username: object
) -> None:
    """Give a TERMINATED cluster a new owner (admins only)."""
    require_admin(principal)
    row = await _get_row(session, cluster_id)
    if not isinstance(owner_username, str) or not owner_username:
        raise InvalidParameterValue("owner_username is required.")
    user = await get_user_by_name(session, owner_username)
    if user is None:
        raise InvalidParameterValue(f"owner_username: User {owner_username} does not exist.")
    if row.state != State.TERMINATED:
        raise _unexpected_state(row)
    row.owner_id = user.id
    row.creator_user_name = user.user_name
    await session.flush()


async def _view(session: AsyncSession, compute: Compute, row: Cluster) -> ClusterView:
    runtime = await session.get(ClusterRuntime, row.cluster_id)
    return ClusterView(
        row, runtime, compute.live.get(row.cluster_id), compute.catalogue, compute.bind_host
    )


async def get_cluster(session: AsyncSession, compute: Compute, cluster_id: object) -> ClusterView:
    """One cluster, with its live driver status."""
    row = await _get_row(session, cluster_id)
    return await _view(session, compute, row)


@dataclass(frozen=True, slots=True)
class ListFilter:
    """`clusters/list` filters, sort and page (API 2.1)."""

    states: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    is_pinned: bool | None = None
    policy_id: str | None = None
    sort_field: str = "DEFAULT"
    sort_direction: str = "ASC"
    page_size: int | None = None
    page_token: str | None = None


async def list_clusters(
    session: AsyncSession, compute: Compute, flt: ListFilter
) -> tuple[list[ClusterView], str, str]:
    """Clusters (filtered, sorted, one page) with the next and previous page tokens."""
    for value in flt.states:
        if value not in {s.value for s in State}:
            raise InvalidParameterValue(f"filter_by.cluster_states: unknown state {value!r}.")
    if flt.sort_field not in ("DEFAULT", "CLUSTER_NAME"):
        raise InvalidParameterValue("sort_by.field must be DEFAULT or CLUSTER_NAME.")
    if flt.sort_direction not in ("ASC", "DESC"):
        raise InvalidParameterValue("sort_by.direction must be ASC or DESC.")
    query = select(Cluster).where(Cluster.deleted_at.is_(None))
    if flt.states:
        query = query.where(Cluster.state.in_(flt.states))
    if flt.sources:
        query = query.where(Cluster.cluster_source.in_(flt.sources))
    if flt.is_pinned is not None:
        query = query.where(Cluster.pinned.is_(flt.is_pinned))
    rows = list((await session.scalars(query)).all())
    if flt.policy_id is not None:
        rows = [r for r in rows if r.spec.get("policy_id") == flt.policy_id]
    if flt.sort_field == "CLUSTER_NAME":
        rows.sort(key=lambda r: (r.cluster_name.lower(), r.cluster_id))
    else:
        rows.sort(
            key=lambda r: (
                _STATE_ORDER.get(State(r.state), 9),
                not r.pinned,
                r.cluster_name.lower(),
                r.cluster_id,
            )
        )
    if flt.sort_direction == "DESC":
        rows.reverse()
    offset = decode_page_token(flt.page_token)
    size = flt.page_size if flt.page_size and flt.page_size > 0 else None
    if size is not None:
        size = min(size, 500)
    page = rows[offset : offset + size] if size else rows[offset:]
    following = offset + len(page)
    next_token = encode_page_token(following) if size and following < len(rows) else ""
    prev_token = encode_page_token(max(offset - (size or 0), 0)) if offset > 0 else ""
    views = [await _view(session, compute, r) for r in page]
    return views, next_token, prev_token


async def cluster_events(session: AsyncSession, body: dict[str, Any]) -> EventPage:
    """One page of a cluster's events (`clusters/events`)."""
    await _get_row(session, body.get("cluster_id"))
    return await list_events(session, EventQuery.parse(body))


async def proxy_target(
    session: AsyncSession,
    compute: Compute,
    principal: Principal,
    org_id: str,
    cluster_id: str,
    port: int,
) -> str:
    """The base URL behind `/driver-proxy/o/<org>/<cluster>/<port>/`: only a running cluster's
    own UI ports, only for those who may attach to the cluster."""
    if org_id not in ("0", compute.settings.workspace_id):
        raise ResourceDoesNotExist(f"Workspace {org_id} does not exist.")
    row = await _get_row(session, cluster_id)
    await require_level(session, principal, row, PermissionLevel.CAN_ATTACH_TO)
    runtime = await session.get(ClusterRuntime, cluster_id)
    handle = handle_of(runtime)
    if handle is None or row.state not in (State.RUNNING, State.RESIZING):
        raise InvalidState(f"Cluster {cluster_id} is not running.")
    if port not in compute.backend.proxy_ports(handle):
        raise InvalidParameterValue(f"Port {port} is not served by cluster {cluster_id}.")
    return f"http://{compute.bind_host}:{port}"


def is_active(row: Cluster) -> bool:
    """Whether a cluster holds (or is acquiring) processes."""
    return State(row.state) in ACTIVE_STATES
