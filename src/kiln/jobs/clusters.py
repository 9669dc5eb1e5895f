"""`JobClusters`: the clusters job tasks run on, through the compute layer's public services.

- `existing_cluster_id`: started if it is TERMINATED (as Databricks does), then waited for.
- `new_cluster`: a cluster of the task's own (`cluster_source: JOB`), created in the
  transaction that records it on the task run, terminated when the task ends.
- `job_cluster_key`: one cluster per key and run, shared by the run's tasks, recorded on the
  run when created and terminated in the transaction that ends the run.
- Clusters from instance pools wait for capacity as every pool cluster does (the cluster stays
  PENDING with the reason in its state message, which the task shows).

A restarted control plane finds the clusters it recorded and never creates a second one.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from kiln.compute import clusters as cluster_service
from kiln.compute.libraries.service import cluster_status, install
from kiln.compute.lifecycle import begin_termination, load_cluster
from kiln.compute.service import Compute
from kiln.compute.spec import parse_spec
from kiln.compute.states import ACTIVE_STATES, State, TerminationCode
from kiln.errors import InvalidParameterValue, InvalidState, KilnError
from kiln.jobs.runners.base import ClusterRequest, Reporter
from kiln.principal import Principal
from kiln.store.models import Cluster, JobRun, JobTaskRun

__all__ = ["JobClusters", "ensure_libraries"]

POLL_SECONDS = 1.0
# A cluster a task found RUNNING this recently is taken as running by the next task (the
# iterations of a for_each start back to back); one that stopped meanwhile fails the command.
SEEN_RUNNING_SECONDS = 1.0
_GONE = {State.TERMINATED.value, State.TERMINATING.value, State.ERROR.value}


class JobClusters:
    """Clusters for job tasks, on the running server's compute."""

    def __init__(self, compute: Compute) -> None:
        self.compute = compute
        self._locks: dict[tuple[int, str], asyncio.Lock] = {}
        self._seen_running: dict[str, float] = {}

    async def check(
        self,
        session: AsyncSession,
        principal: Principal,
        clusters: list[tuple[str, str]],
        new_clusters: list[tuple[str, dict[str, Any]]],
    ) -> None:
        """400 naming the field for an unknown cluster or pool, or a bad cluster spec."""
        for where, cluster_id in clusters:
            row = await session.get(Cluster, cluster_id)
            if row is None or row.deleted_at is not None:
                raise InvalidParameterValue(f"{where}: Cluster {cluster_id} does not exist.")
        for where, raw in new_clusters:
            try:
                body = await self.compute.pools.resolve_cluster_body(session, dict(raw))
                parse_spec(body, self.compute.catalogue, self.compute.settings.compute.max_workers)
            except InvalidParameterValue as exc:
                raise InvalidParameterValue(f"{where}.{exc.message}") from None

    async def acquire(self, request: ClusterRequest, report: Reporter) -> str:
        """The task's cluster once it is RUNNING."""
        task = request.task
        running = False
        if task.get("existing_cluster_id"):
            cluster_id = str(task["existing_cluster_id"])
            running = await self._existing(request.principal, cluster_id)
        elif task.get("new_cluster"):
            cluster_id = await self._task_cluster(request)
        else:
            cluster_id = await self._job_cluster(request, task["job_cluster_key"])
        if not running:
            await self._wait_running(cluster_id, report)
        if task.get("libraries"):
            await report(f"Installing libraries on cluster {cluster_id}")
            await ensure_libraries(self.compute, request.principal, cluster_id, task["libraries"])
        return cluster_id

    async def _existing(self, principal: Principal, cluster_id: str) -> bool:
        """Start the cluster if it is TERMINATED; whether it was RUNNING already (then there
        is nothing to wait for: a warm cluster costs one read)."""
        seen = self._seen_running.get(cluster_id)
        if seen is not None and time.monotonic() - seen < SEEN_RUNNING_SECONDS:
            return True
        # Tasks of one run often share a cluster: one of them starts it, the others wait.
        lock = self._locks.setdefault((0, cluster_id), asyncio.Lock())
        async with lock:
            for attempt in range(3):
                try:
                    async with self.compute.db.session() as session:
                        row = await session.get(Cluster, cluster_id, populate_existing=True)
                        if row is None or row.deleted_at is not None:
                            raise InvalidParameterValue(f"Cluster {cluster_id} does not exist.")
                        if row.state in (State.RUNNING.value, State.RESIZING.value):
                            self._seen_running[cluster_id] = time.monotonic()
                            return True
                        if row.state == State.TERMINATED:
                            await cluster_service.start_cluster(
                                session, self.compute, principal, cluster_id
                            )
                    break
                except StaleDataError:
                    # Someone else changed the cluster at the same moment: look again.
                    if attempt == 2:
                        raise
        return False

    def _body(self, request: ClusterRequest, spec: dict[str, Any], label: str) -> dict[str, Any]:
        body = dict(spec)
        body["cluster_name"] = f"job-{request.job_id or 'submit'}-run-{request.job_run_id}-{label}"
        body["cluster_source"] = "JOB"
        return body

    async def _task_cluster(self, request: ClusterRequest) -> str:
        async with self.compute.db.session() as session:
            row = await session.get(JobTaskRun, request.task_run_id, populate_existing=True)
            if row is not None and row.cluster_id:
                return row.cluster_id
            body = self._body(
                request, request.task["new_cluster"], request.task.get("task_key", "task")
            )
            cluster = await cluster_service.create_cluster(
                session, self.compute, request.principal, body
            )
            if row is not None:
                row.cluster_id = cluster.cluster_id
            await session.commit()
            return cluster.cluster_id

    async def _job_cluster(self, request: ClusterRequest, key: str) -> str:
        lock = self._locks.setdefault((request.job_run_id, key), asyncio.Lock())
        async with lock, self.compute.db.session() as session:
            run = await session.get(JobRun, request.job_run_id, populate_existing=True)
            if run is None:
                raise InvalidState(f"Run {request.job_run_id} does not exist.")
            recorded = dict(run.job_clusters or {})
            if recorded.get(key):
                return recorded[key]
            spec = request.job_clusters.get(key)
            if spec is None:
                raise InvalidParameterValue(f"The run has no job cluster {key!r}.")
            cluster = await cluster_service.create_cluster(
                session, self.compute, request.principal, self._body(request, spec, key)
            )
            recorded[key] = cluster.cluster_id
            run.job_clusters = recorded
            await session.commit()
            return cluster.cluster_id

    async def _wait_running(self, cluster_id: str, report: Reporter) -> None:
        said = None
        while True:
            async with self.compute.db.session() as session:
                row = await session.get(Cluster, cluster_id, populate_existing=True)
            if row is None or row.deleted_at is not None:
                raise InvalidState(f"Cluster {cluster_id} was deleted.")
            if row.state in (State.RUNNING.value, State.RESIZING.value):
                return
            if row.state in _GONE:
                reason = (row.termination_reason or {}).get("code", row.state)
                raise KilnError(
                    f"Cluster {cluster_id} is {row.state} ({reason}): {row.state_message}",
                    error_code="CLUSTER_ERROR",
                )
            message = f"Waiting for cluster {cluster_id} ({row.state}): {row.state_message}"
            if message != said:
                await report(message)
                said = message
            await asyncio.sleep(POLL_SECONDS)

    async def release(self, request: ClusterRequest) -> None:
        """End the cluster a task created for itself."""
        async with self.compute.db.session() as session:
            row = await session.get(JobTaskRun, request.task_run_id, populate_existing=True)
            if row is None or not row.cluster_id:
                return
            await self.end_run(session, [row.cluster_id])
            await session.commit()

    async def end_run(self, session: AsyncSession, cluster_ids: list[str]) -> None:
        """Terminate the clusters a run created (in the caller's transaction)."""
        for cluster_id in cluster_ids:
            row = await load_cluster(session, cluster_id)
            if row is None or State(row.state) not in ACTIVE_STATES:
                continue
            if row.state == State.TERMINATING:
                continue
            begin_termination(session, row, TerminationCode.JOB_FINISHED, "Job run finished")
            self.compute.wake_after_commit(session)


async def ensure_libraries(
    compute: Compute, principal: Principal, cluster_id: str, libraries: list[dict[str, Any]]
) -> None:
    """Install a task's libraries on its cluster and wait until they are installed."""
    async with compute.db.session() as session:
        await install(session, compute, principal, cluster_id, libraries)
    wanted = {_key(lib) for lib in libraries}
    while True:
        async with compute.db.session() as session:
            statuses = await cluster_status(session, cluster_id)
        mine = [s for s in statuses if _key(s["library"]) in wanted]
        failed = [s for s in mine if s["status"] == "FAILED"]
        if failed:
            messages = "; ".join(m for s in failed for m in s.get("messages", []))
            raise KilnError(
                f"Library installation failed: {messages}", error_code="LIBRARY_INSTALLATION_ERROR"
            )
        if mine and all(s["status"] == "INSTALLED" for s in mine) and len(mine) >= len(wanted):
            return
        await asyncio.sleep(POLL_SECONDS)


def _key(library: dict[str, Any]) -> str:
    return json.dumps(library, sort_keys=True, separators=(",", ":"))
