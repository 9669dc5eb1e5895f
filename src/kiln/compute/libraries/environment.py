"""`ClusterLibraries`: the environment provider that gives each cluster its own virtual
environment, and the background installer that fills it.

On every start (and restart) of a cluster the environment is rebuilt: libraries marked
UNINSTALL_ON_RESTART are dropped, jars are fetched and Maven coordinates checked before Spark
starts (they go on `spark.jars` / `spark.jars.packages`), and the Python libraries are
installed once the cluster is RUNNING, in the order they were requested. A library installed
on a RUNNING cluster is installed at once. Every status change goes through
`statuses.transition`.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from kiln.compute.backends.base import PythonEnvironment
from kiln.compute.libraries.installer import (
    VirtualEnv,
    build_env,
    fetch_error,
    fetch_file,
    maven_unreachable,
    pip_install,
)
from kiln.compute.libraries.spec import LibrarySpec, parse_library
from kiln.compute.libraries.statuses import LibraryStatus, transition
from kiln.compute.lifecycle import load_cluster, owner_principal
from kiln.compute.spec import ClusterSpec
from kiln.compute.states import State
from kiln.errors import KilnError
from kiln.store.models import ClusterLibrary, now_utc

if TYPE_CHECKING:
    from kiln.compute.service import Compute

__all__ = ["ClusterLibraries"]

log = logging.getLogger("kiln.compute.libraries")

PYTHON_KINDS = frozenset({"pypi", "whl", "requirements"})
INSTALL_TIMEOUT_SECONDS = 900.0
# How long the installer waits for a starting cluster to become RUNNING.
START_WAIT_SECONDS = 1800.0
_STARTING = {State.PENDING.value, State.RESTARTING.value}
_RUNNING = {State.RUNNING.value, State.RESIZING.value}


def _set(row: ClusterLibrary, target: LibraryStatus, *messages: str) -> None:
    transition(row, target, *messages)
    row.updated_at = now_utc()


def _spec_of(row: ClusterLibrary) -> LibrarySpec:
    return parse_library(row.library, "library")


def _tail(text: str, limit: int = 4000) -> str:
    return text if len(text) <= limit else "…" + text[-limit:]


class ClusterLibraries:
    """Per-cluster environments and their libraries (an `EnvironmentProvider`)."""

    def __init__(self, compute: Compute) -> None:
        self.compute = compute
        self._locks: dict[str, asyncio.Lock] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def env_dir(self, cluster_id: str) -> Path:
        """Where a cluster's virtual environment lives."""
        return self.compute.clusters_dir / cluster_id / "env"

    def _lock(self, cluster_id: str) -> asyncio.Lock:
        return self._locks.setdefault(cluster_id, asyncio.Lock())

    async def _rows(self, session: AsyncSession, cluster_id: str) -> list[ClusterLibrary]:
        query = (
            select(ClusterLibrary)
            .where(ClusterLibrary.cluster_id == cluster_id)
            .order_by(ClusterLibrary.id)
            .execution_options(populate_existing=True)
        )
        return list((await session.scalars(query)).all())

    # -- EnvironmentProvider ------------------------------------------------------------------

    async def prepare(self, cluster_id: str, spec: ClusterSpec) -> PythonEnvironment:
        """The cluster's environment: rebuilt when it starts, reused while it runs (resize)."""
        venv = VirtualEnv(self.env_dir(cluster_id))
        async with self.compute.db.session() as session:
            row = await load_cluster(session, cluster_id)
            state = row.state if row is not None else ""
        async with self._lock(cluster_id):
            if state in _RUNNING and venv.python.exists():
                async with self.compute.db.session() as session:
                    conf = self._jar_conf(venv, await self._rows(session, cluster_id))
                return self._environment(venv, conf)
            try:
                venv = await build_env(venv.root)
            except Exception as exc:
                log.exception("cluster %s: cannot build its environment", cluster_id)
                await self._fail_all(cluster_id, f"Cannot build the cluster environment: {exc}")
                return PythonEnvironment(python=sys.executable)
            conf = await self._restart_libraries(cluster_id, venv)
        self.kick(cluster_id)
        return self._environment(venv, conf)

    def _environment(self, venv: VirtualEnv, conf: dict[str, str]) -> PythonEnvironment:
        import os

        path = os.environ.get("PATH", "")
        env = {"VIRTUAL_ENV": str(venv.root), "PATH": f"{venv.root / 'bin'}:{path}"}
        return PythonEnvironment(python=str(venv.python), env=env, spark_conf=conf)

    def _jar_conf(self, venv: VirtualEnv, rows: list[ClusterLibrary]) -> dict[str, str]:
        """spark.jars / spark.jars.packages for the cluster's installed jar and Maven rows."""
        jars: list[str] = []
        packages: list[str] = []
        repos: list[str] = []
        excludes: list[str] = []
        for row in rows:
            if row.status != LibraryStatus.INSTALLED or row.cluster_id is None:
                continue
            spec = _spec_of(row)
            if spec.kind == "jar":
                local = self._local_file(venv, row, spec)
                if local.exists():
                    jars.append(str(local))
            elif spec.kind == "maven":
                packages.append(spec.value)
                if spec.repo:
                    repos.append(spec.repo)
                excludes.extend(spec.exclusions)
        conf: dict[str, str] = {}
        for key, values in (
            ("spark.jars", jars),
            ("spark.jars.packages", packages),
            ("spark.jars.repositories", repos),
            ("spark.jars.excludes", excludes),
        ):
            if values:
                conf[key] = ",".join(dict.fromkeys(values))
        return conf

    def _local_file(self, venv: VirtualEnv, row: ClusterLibrary, spec: LibrarySpec) -> Path:
        name = (spec.file.path if spec.file else spec.value).rsplit("/", 1)[-1]
        # Wheels must keep their file name (pip reads the version from it).
        return venv.files / str(row.id) / name

    async def _fail_all(self, cluster_id: str, message: str) -> None:
        async with self.compute.db.session() as session:
            for row in await self._rows(session, cluster_id):
                if row.status == LibraryStatus.UNINSTALL_ON_RESTART:
                    await session.delete(row)
                    continue
                if row.status != LibraryStatus.PENDING:
                    _set(row, LibraryStatus.PENDING)
                _set(row, LibraryStatus.FAILED, message)
            await session.commit()

    async def _restart_libraries(self, cluster_id: str, venv: VirtualEnv) -> dict[str, str]:
        """Drop the libraries marked for removal, reset the rest to PENDING, and settle the
        JVM ones (jars fetched, Maven checked) before Spark starts."""
        async with self.compute.db.session() as session:
            cluster = await load_cluster(session, cluster_id)
            rows = await self._rows(session, cluster_id)
            for row in rows:
                if row.status == LibraryStatus.UNINSTALL_ON_RESTART:
                    await session.delete(row)
                elif row.status != LibraryStatus.PENDING:
                    _set(row, LibraryStatus.PENDING, "Waiting for the cluster to start.")
            await session.flush()
            rows = [r for r in rows if r.status == LibraryStatus.PENDING]
            rows += await self._copy_for_all_clusters(session, cluster_id, rows)
            owner = await owner_principal(session, cluster) if cluster is not None else None
            for row in rows:
                spec = _spec_of(row)
                if spec.kind in PYTHON_KINDS:
                    continue
                if spec.kind == "maven":
                    _set(row, LibraryStatus.RESOLVING, f"Resolving {spec.value}.")
                    reason = await maven_unreachable(spec)
                    if reason is not None:
                        _set(row, LibraryStatus.FAILED, reason)
                        continue
                    _set(row, LibraryStatus.INSTALLING, "Added to spark.jars.packages.")
                    _set(row, LibraryStatus.INSTALLED)
                    continue
                _set(row, LibraryStatus.INSTALLING, f"Fetching {spec.value}.")
                try:
                    assert spec.file is not None and owner is not None
                    await fetch_file(
                        session,
                        self.compute.dbfs,
                        owner,
                        spec.file,
                        self._local_file(venv, row, spec),
                    )
                except (KilnError, OSError, ValueError, AssertionError) as exc:
                    _set(row, LibraryStatus.FAILED, f"Cannot read {spec.value}: {fetch_error(exc)}")
                    continue
                _set(row, LibraryStatus.INSTALLED)
            await session.commit()
            return self._jar_conf(venv, await self._rows(session, cluster_id))

    async def _copy_for_all_clusters(
        self, session: AsyncSession, cluster_id: str, present: list[ClusterLibrary]
    ) -> list[ClusterLibrary]:
        """Give a starting cluster its own row of every library set for all clusters that it
        lacks (marked `for_all_clusters`), so they install and report like its own."""
        have = {r.library_key for r in present}
        query = (
            select(ClusterLibrary)
            .where(ClusterLibrary.cluster_id.is_(None))
            .order_by(ClusterLibrary.id)
        )
        copies = [
            ClusterLibrary(
                cluster_id=cluster_id,
                library=dict(row.library),
                library_key=row.library_key,
                status=LibraryStatus.PENDING.value,
                messages=["Installed on all clusters."],
                for_all_clusters=True,
            )
            for row in (await session.scalars(query)).all()
            if row.library_key not in have
        ]
        session.add_all(copies)
        await session.flush()
        return copies

    # -- the installer ------------------------------------------------------------------------

    def kick(self, cluster_id: str) -> None:
        """Install the cluster's PENDING Python libraries (once it is RUNNING), in the
        background; one installer per cluster."""
        task = self._tasks.get(cluster_id)
        if task is not None and not task.done():
            task.add_done_callback(lambda _: self._again(cluster_id))
            return
        self._tasks[cluster_id] = asyncio.create_task(
            self._install_loop(cluster_id), name=f"kiln-libraries-{cluster_id}"
        )

    def _again(self, cluster_id: str) -> None:
        if self.compute.started:
            self.kick(cluster_id)

    async def _install_loop(self, cluster_id: str) -> None:
        try:
            if not await self._wait_running(cluster_id):
                return
            while await self._install_next(cluster_id):
                pass
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("cluster %s: library installer failed", cluster_id)

    async def _wait_running(self, cluster_id: str) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + START_WAIT_SECONDS
        while loop.time() < deadline:
            async with self.compute.db.session() as session:
                row = await load_cluster(session, cluster_id)
            if row is None or row.deleted_at is not None:
                return False
            if row.state in _RUNNING:
                return True
            if row.state not in _STARTING:
                return False
            await asyncio.sleep(0.5)
        return False

    async def _install_next(self, cluster_id: str) -> bool:
        """Install the first PENDING library; False when there is none (or the cluster left
        RUNNING: a start installs everything again)."""
        async with self._lock(cluster_id):
            venv = VirtualEnv(self.env_dir(cluster_id))
            async with self.compute.db.session() as session:
                cluster = await load_cluster(session, cluster_id)
                if cluster is None or cluster.state not in _RUNNING or not venv.python.exists():
                    return False
                rows = await self._rows(session, cluster_id)
                # Jars and Maven asked for while RUNNING: checked once, added at the restart.
                for fresh in rows:
                    if fresh.status == LibraryStatus.PENDING and not fresh.messages:
                        fresh_spec = _spec_of(fresh)
                        if fresh_spec.kind not in PYTHON_KINDS:
                            await self._jvm_on_running(fresh, fresh_spec)
                await session.commit()
                pending = [
                    r
                    for r in rows
                    if r.status == LibraryStatus.PENDING and _spec_of(r).kind in PYTHON_KINDS
                ]
                if not pending:
                    return False
                row = pending[0]
                spec = _spec_of(row)
                row_id = row.id
                _set(row, LibraryStatus.INSTALLING, f"Installing {spec.label} with uv.")
                await session.commit()
                owner = await owner_principal(session, cluster)
                local: Path | None = None
                if spec.file is not None:
                    local = self._local_file(venv, row, spec)
                    try:
                        await fetch_file(session, self.compute.dbfs, owner, spec.file, local)
                    except (KilnError, OSError, ValueError) as exc:
                        await self._finish(
                            row_id, False, f"Cannot read {spec.value}: {fetch_error(exc)}"
                        )
                        return True
            result = await pip_install(venv, spec, local, INSTALL_TIMEOUT_SECONDS)
            await self._finish(row_id, result.ok, _tail(result.output))
            return True

    async def _jvm_on_running(self, row: ClusterLibrary, spec: LibrarySpec) -> None:
        """A jar or Maven library asked for on a RUNNING cluster: the JVM's classpath is
        fixed, so it is checked now and added when the cluster restarts."""
        if spec.kind == "maven":
            reason = await maven_unreachable(spec)
            if reason is not None:
                _set(row, LibraryStatus.RESOLVING, f"Resolving {spec.value}.")
                _set(row, LibraryStatus.FAILED, reason)
                return
        row.messages = ["Added to the driver and executor classpath when the cluster restarts."]

    async def _finish(self, row_id: int, ok: bool, output: str) -> None:
        async with self.compute.db.session() as session:
            row = await session.get(ClusterLibrary, row_id, populate_existing=True)
            if row is None or row.status != LibraryStatus.INSTALLING:
                return  # uninstalled meanwhile
            if ok:
                _set(row, LibraryStatus.INSTALLED)
            else:
                _set(row, LibraryStatus.FAILED, output or "Installation failed.")
            await session.commit()

    async def stop(self) -> None:
        """Cancel every installer (the server is stopping)."""
        tasks = [t for t in self._tasks.values() if not t.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
