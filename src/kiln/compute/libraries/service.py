"""The Libraries API: install, uninstall and the statuses of one or every cluster; and
Kiln's admin API for libraries installed on every cluster.

The API records intent; `ClusterLibraries` does the installing. A library installed on a
RUNNING cluster is installed at once; on any other cluster it waits (PENDING) for the next
start. Uninstalling marks UNINSTALL_ON_RESTART and the next start removes it.

Libraries for all clusters (Databricks' legacy "install automatically on all clusters", which
its public API no longer offers) are rows without a cluster, set by an admin through
`/api/2.0/kiln/libraries/all-clusters/...`. Every cluster start copies them onto the cluster
(`for_all_clusters`), so they install like the cluster's own and show in cluster-status with
`is_library_for_all_clusters: true`; until a cluster next starts they show there as PENDING.
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
from kiln.identity import Principal, require_admin
from kiln.store.models import Cluster, ClusterLibrary, now_utc

if TYPE_CHECKING:
    from kiln.compute.service import Compute

__all__ = [
    "all_cluster_statuses",
    "cluster_status",
    "install",
    "install_for_all_clusters",
    "libraries_for_all_clusters",
    "uninstall",
    "uninstall_for_all_clusters",
]

_LIVE = {State.RUNNING.value, State.RESIZING.value}


async def _cluster(session: AsyncSession, cluster_id: object) -> Cluster:
    if not isinstance(cluster_id, str) or not cluster_id:
        raise InvalidParameterValue("cluster_id is required.")
    row = await session.get(Cluster, cluster_id, populate_existing=True)
    if row is None or row.deleted_at is not None:
        raise ResourceDoesNotExist(f"Cluster {cluster_id} does not exist")
    return row


async def _rows(session: AsyncSession, cluster_id: str | None) -> list[ClusterLibrary]:
    query = select(ClusterLibrary).order_by(ClusterLibrary.id)
    if cluster_id is None:
        query = query.where(ClusterLibrary.cluster_id.is_(None))
    else:
        query = query.where(ClusterLibrary.cluster_id == cluster_id)
    return list((await session.scalars(query)).all())


def _full_status(row: ClusterLibrary) -> dict[str, Any]:
    out: dict[str, Any] = {
        "library": row.library,
        "status": row.status,
        "is_library_for_all_clusters": row.for_all_clusters,
    }
    if row.messages:
        out["messages"] = list(row.messages)
    return out


def _not_yet_copied(row: ClusterLibrary) -> dict[str, Any]:
    """A library for all clusters that a cluster has not started with yet."""
    return {
        "library": row.library,
        "status": LibraryStatus.PENDING.value,
        "is_library_for_all_clusters": True,
        "messages": ["Installed on all clusters: installs when the cluster next starts."],
    }


def _merged(own: list[ClusterLibrary], for_all: list[ClusterLibrary]) -> list[dict[str, Any]]:
    """A cluster's libraries, then the libraries for all clusters it does not have yet."""
    keys = {r.library_key for r in own}
    return [_full_status(r) for r in own] + [
        _not_yet_copied(r) for r in for_all if r.library_key not in keys
    ]


async def install(
    session: AsyncSession,
    compute: Compute,
    principal: Principal,
    cluster_id: object,
    libraries: object,
) -> None:
    """Request libraries on a cluster (installed now if it runs, else at its next start)."""
    cluster = await _cluster(session, cluster_id)
    await require_manage(session, principal, cluster)
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
        else:
            # The cluster's own now, even if it came as a library for all clusters.
            row.for_all_clusters = False
            if row.status in (LibraryStatus.UNINSTALL_ON_RESTART, LibraryStatus.FAILED):
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
    await require_manage(session, principal, cluster)
    specs = parse_libraries(libraries)
    existing = {r.library_key: r for r in await _rows(session, cluster.cluster_id)}
    for_all = {r.library_key for r in await _rows(session, None)}
    for i, spec in enumerate(specs):
        row = existing.get(spec.key)
        if spec.key in for_all and (row is None or row.for_all_clusters):
            raise InvalidParameterValue(
                f"libraries[{i}]: {spec.label} is installed on all clusters; an admin removes "
                "it with /api/2.0/kiln/libraries/all-clusters/uninstall."
            )
        if row is None:
            continue
        if row.status == LibraryStatus.PENDING and cluster.state not in _LIVE:
            await session.delete(row)
        elif row.status != LibraryStatus.UNINSTALL_ON_RESTART:
            transition(row, LibraryStatus.UNINSTALL_ON_RESTART, "Restart the cluster to uninstall.")
            row.updated_at = now_utc()
    await session.commit()


async def cluster_status(session: AsyncSession, cluster_id: object) -> list[dict[str, Any]]:
    """`LibraryFullStatus` of every library on a cluster, in request order, then the libraries
    for all clusters it has not started with yet."""
    cluster = await _cluster(session, cluster_id)
    return _merged(await _rows(session, cluster.cluster_id), await _rows(session, None))


async def all_cluster_statuses(session: AsyncSession) -> list[dict[str, Any]]:
    """`ClusterLibraryStatuses` of every cluster that has libraries (its own or all clusters')."""
    for_all = await _rows(session, None)
    query = (
        select(Cluster.cluster_id, ClusterLibrary)
        .outerjoin(ClusterLibrary, Cluster.cluster_id == ClusterLibrary.cluster_id)
        .where(Cluster.deleted_at.is_(None))
        .order_by(Cluster.created_at, Cluster.cluster_id, ClusterLibrary.id)
    )
    own: dict[str, list[ClusterLibrary]] = {}
    for cid, row in (await session.execute(query)).tuples():
        own.setdefault(cid, [])
        if row is not None:
            own[cid].append(row)
    out = []
    for cid, rows in own.items():
        statuses = _merged(rows, for_all)
        if statuses:
            out.append({"cluster_id": cid, "library_statuses": statuses})
    return out


# -- libraries for all clusters (Kiln's admin API) -----------------------------------------------


async def libraries_for_all_clusters(session: AsyncSession) -> list[dict[str, Any]]:
    """The libraries an admin set for every cluster, in the order they were set."""
    return [
        {"library": r.library, "is_library_for_all_clusters": True}
        for r in await _rows(session, None)
    ]


async def install_for_all_clusters(
    session: AsyncSession, principal: Principal, libraries: object
) -> None:
    """Set libraries for every cluster (admins only): each cluster installs them when it next
    starts."""
    require_admin(principal)
    specs = parse_libraries(libraries)
    existing = {r.library_key for r in await _rows(session, None)}
    for spec in specs:
        if spec.key in existing:
            continue
        session.add(
            ClusterLibrary(
                cluster_id=None,
                library=spec.wire,
                library_key=spec.key,
                status=LibraryStatus.PENDING.value,
                messages=[],
                for_all_clusters=True,
            )
        )
        existing.add(spec.key)
    await session.commit()


async def uninstall_for_all_clusters(
    session: AsyncSession, principal: Principal, libraries: object
) -> None:
    """Stop installing libraries on every cluster (admins only): clusters that have them drop
    them at their next restart (UNINSTALL_ON_RESTART), as the cluster's own uninstall does."""
    require_admin(principal)
    specs = parse_libraries(libraries)
    keys = {spec.key for spec in specs}
    for row in await _rows(session, None):
        if row.library_key in keys:
            await session.delete(row)
    copies = (
        await session.execute(
            select(ClusterLibrary, Cluster.state)
            .join(Cluster, Cluster.cluster_id == ClusterLibrary.cluster_id)
            .where(ClusterLibrary.for_all_clusters.is_(True), ClusterLibrary.library_key.in_(keys))
        )
    ).tuples()
    for row, state in copies:
        if row.status == LibraryStatus.PENDING and state not in _LIVE:
            await session.delete(row)
        elif row.status != LibraryStatus.UNINSTALL_ON_RESTART:
            transition(row, LibraryStatus.UNINSTALL_ON_RESTART, "Restart the cluster to uninstall.")
            row.updated_at = now_utc()
    await session.commit()
