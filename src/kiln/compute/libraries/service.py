"""The Libraries API: install, uninstall and the statuses of one or every cluster.

The API records intent; `ClusterLibraries` does the installing. A library installed on a
RUNNING cluster is installed at once; on any other cluster it waits (PENDING) for the next
start. Uninstalling marks UNINSTALL_ON_RESTART and the next start removes it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncSession

from kiln.compute.clusters import require_manage
from kiln.compute.libraries.spec import parse_libraries
from kiln.compute.libraries.statuses import LibraryStatus, transition
from kiln.compute.states import State
from kiln.errors import InvalidParameterValue, ResourceDoesNotExist
from kiln.identity import Principal
from kiln.store.models import Cluster, ClusterLibrary, now_utc

if TYPE_CHECKING:
    from kiln.compute.service import Compute

__all__ = ["all_cluster_statuses", "cluster_status", "install", "uninstall"]

_LIVE = {State.RUNNING.value, State.RESIZING.value}


async def _cluster(session: AsyncSession, cluster_id: object) -> Cluster:
    if not isinstance(cluster_id, str) or not cluster_id:
        raise InvalidParameterValue("cluster_id is required.")
    row = await session.get(Cluster, cluster_id, populate_existing=True)
    if row is None or row.deleted_at is not None:
        raise ResourceDoesNotExist(f"Cluster {cluster_id} does not exist")
    return row


# One rule for who manages a cluster: the clusters service owns it.
_require_manage = require_manage


async def _rows(session: AsyncSession, cluster_id: str | None) -> list[ClusterLibrary]:
    query = select(ClusterLibrary).order_by(ClusterLibrary.id)
    if cluster_id is None:
        query = query.where(ClusterLibrary.cluster_id.is_(None))
    else:
        query = query.where(ClusterLibrary.cluster_id == cluster_id)
    return list((await session.scalars(query)).all())


def _full_status(row: ClusterLibrary, *, for_all: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "library": row.library,
        "status": row.status,
        "is_library_for_all_clusters": for_all,
    }
    if row.messages:
        out["messages"] = list(row.messages)
    return out


async def install(
    session: AsyncSession,
    compute: Compute,
    principal: Principal,
    cluster_id: object,
    libraries: object,
) -> None:
    """Request libraries on a cluster (installed now if it runs, else at its next start)."""
    cluster = await _cluster(session, cluster_id)
    _require_manage(principal, cluster)
    specs = parse_libraries(libraries)
    existing = {r.library_key: r for r in await _rows(session, cluster.cluster_id)}
    for spec in specs:
        row = existing.get(spec.key)
        if row is None:
            row = ClusterLibrary(
                cluster_id=cluster.cluster_id,
                library=spec.wire,
                library_key=spec.key,
                status=LibraryStatus.PENDING.value,
                messages=[],
            )
            session.add(row)
            existing[spec.key] = row
        elif row.status in (LibraryStatus.UNINSTALL_ON_RESTART, LibraryStatus.FAILED):
            # Asked again: install it again (a failed one is retried).
            transition(row, LibraryStatus.PENDING)
            row.updated_at = now_utc()
    if cluster.state in _LIVE:
        cid = cluster.cluster_id
        event.listen(
            session.sync_session,
            "after_commit",
            lambda _: compute.libraries.kick(cid),
            once=True,
        )
    await session.commit()


async def uninstall(
    session: AsyncSession,
    compute: Compute,
    principal: Principal,
    cluster_id: object,
    libraries: object,
) -> None:
    """Mark libraries for removal at the next restart (never-installed ones go at once)."""
    cluster = await _cluster(session, cluster_id)
    _require_manage(principal, cluster)
    specs = parse_libraries(libraries)
    existing = {r.library_key: r for r in await _rows(session, cluster.cluster_id)}
    for spec in specs:
        row = existing.get(spec.key)
        if row is None:
            continue
        if row.status == LibraryStatus.PENDING and cluster.state not in _LIVE:
            await session.delete(row)
        elif row.status != LibraryStatus.UNINSTALL_ON_RESTART:
            transition(row, LibraryStatus.UNINSTALL_ON_RESTART, "Restart the cluster to uninstall.")
            row.updated_at = now_utc()
    await session.commit()


async def cluster_status(session: AsyncSession, cluster_id: object) -> list[dict[str, Any]]:
    """`LibraryFullStatus` of every library on a cluster, in request order."""
    cluster = await _cluster(session, cluster_id)
    return [_full_status(r) for r in await _rows(session, cluster.cluster_id)]


async def all_cluster_statuses(session: AsyncSession) -> list[dict[str, Any]]:
    """`ClusterLibraryStatuses` of every cluster that has libraries."""
    query = (
        select(ClusterLibrary, Cluster)
        .join(Cluster, Cluster.cluster_id == ClusterLibrary.cluster_id)
        .where(Cluster.deleted_at.is_(None))
        .order_by(ClusterLibrary.cluster_id, ClusterLibrary.id)
    )
    grouped: dict[str, list[dict[str, Any]]] = {}
    for row, cluster in (await session.execute(query)).tuples():
        grouped.setdefault(cluster.cluster_id, []).append(_full_status(row))
    return [{"cluster_id": cid, "library_statuses": st} for cid, st in grouped.items()]
