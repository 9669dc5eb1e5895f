"""The supervisor's operations on one cluster: start, restart, resize, stop, and the watch of a
running cluster (health, activity, autoscaling, log delivery).

Each operation re-reads the cluster, does its backend work outside any transaction, and moves
the cluster on only if nobody else has moved it meanwhile (the row is versioned). A failure
never leaves a cluster half up: it begins a termination with the reason, and the stop
operation that follows removes every process.
"""

from __future__ import annotations

import asyncio
import logging
import math
import secrets
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from kiln.compute import logs
from kiln.compute.backends.base import (
    DriverStatus,
    InitScriptResult,
    LaunchFailed,
    LaunchSpec,
    PythonEnvironment,
    RuntimeHandle,
)
from kiln.compute.events import add_event
from kiln.compute.init_scripts import fetch_init_scripts
from kiln.compute.lifecycle import begin_termination, handle_of, load_cluster, owner_principal
from kiln.compute.service import Compute
from kiln.compute.spec import ClusterSpec, parse_spec
from kiln.compute.states import EventType, State, TerminationCode, transition
from kiln.errors import KilnError
from kiln.store.models import Cluster, ClusterRuntime, now_utc, to_epoch_ms

__all__ = [
    "ClusterWatch",
    "Reporter",
    "resize_op",
    "start_op",
    "stop_op",
    "watch_op",
]

log = logging.getLogger("kiln.compute")

_RETRIES = 5


async def _update(
    compute: Compute, cluster_id: str, change: Callable[[AsyncSession, Cluster], Awaitable[bool]]
) -> bool:
    """Apply `change` to a fresh copy of the cluster in its own transaction, retrying when a
    concurrent writer got there first. False when the cluster is gone or `change` declined."""
    for _ in range(_RETRIES):
        try:
            async with compute.db.session() as session:
                row = await load_cluster(session, cluster_id)
                if row is None:
                    return False
                return await change(session, row)
        except StaleDataError:
            await asyncio.sleep(0.05)
    log.warning("cluster %s: gave up after %d conflicting updates", cluster_id, _RETRIES)
    return False


class Reporter:
    """What a backend reports through: events and the runtime record, each committed at once."""

    def __init__(self, compute: Compute, cluster_id: str) -> None:
        self.compute = compute
        self.cluster_id = cluster_id

    async def event(self, event_type: EventType, **details: Any) -> None:
        """Record a cluster event."""
        async with self.compute.db.session() as session:
            add_event(session, self.cluster_id, event_type, **details)

    async def record(self, handle: RuntimeHandle) -> None:
        """Persist the runtime handle (before anything waits on the processes it names)."""
        async with self.compute.db.session() as session:
            row = await session.get(ClusterRuntime, self.cluster_id)
            if row is None:
                row = ClusterRuntime(cluster_id=self.cluster_id, backend=handle.backend)
                session.add(row)
            row.backend = handle.backend
            row.handle = dict(handle.data)
            row.control_url = handle.control_url
            row.secret_path = handle.secret_path
            row.spark_app_id = handle.spark_app_id
            row.spark_ui_port = handle.spark_ui_port
            row.updated_at = now_utc()


async def _runtime(compute: Compute, cluster_id: str) -> RuntimeHandle | None:
    async with compute.db.session() as session:
        return handle_of(await session.get(ClusterRuntime, cluster_id))


async def _fail(
    compute: Compute, cluster_id: str, expect: State, code: TerminationCode, message: str
) -> None:
    async def change(session: AsyncSession, row: Cluster) -> bool:
        if row.state != expect:
            return False
        begin_termination(session, row, code, message, databricks_error_message=message[:2000])
        return True

    log.warning("cluster %s failed (%s): %s", cluster_id, code.value, message)
    await _update(compute, cluster_id, change)
    compute.wake()


@dataclass(frozen=True, slots=True)
class _Prepared:
    launch: LaunchSpec
    fetch_failures: list[InitScriptResult]


def _db_env(cluster_id: str, spec: ClusterSpec, host: str) -> dict[str, str]:
    """Databricks' variables for init scripts and Spark processes."""
    return {
        "DB_CLUSTER_ID": cluster_id,
        "DB_CLUSTER_NAME": spec.cluster_name,
        "DB_IS_DRIVER": "TRUE",
        "DB_DRIVER_IP": host,
        "DB_INSTANCE_TYPE": spec.driver_node_type.node_type_id,
        "DB_IS_JOB_CLUSTER": "FALSE",
        "DB_PYTHON_VERSION": f"{sys.version_info.major}.{sys.version_info.minor}",
    }


def _with_environment_conf(conf: dict[str, str], environment: PythonEnvironment) -> dict[str, str]:
    """The user's spark_conf with the environment's comma-list settings appended."""
    out = dict(conf)
    for key, value in environment.spark_conf.items():
        out[key] = ",".join(v for v in (out.get(key, ""), value) if v)
    return out


async def _prepare(compute: Compute, cluster_id: str, expect: State) -> _Prepared | None:
    async with compute.db.session() as session:
        row = await load_cluster(session, cluster_id)
        if row is None or row.state != expect:
            return None
        spec = parse_spec(row.spec, compute.catalogue, compute.settings.compute.max_workers)
        workers = row.target_workers if spec.standalone else 0
        owner = await owner_principal(session, row)
        scripts, failures = await fetch_init_scripts(
            session, compute.dbfs, owner, spec.init_scripts
        )
    environment = await compute.environment.prepare(cluster_id, spec)
    env = {**spec.spark_env_vars, **_db_env(cluster_id, spec, compute.bind_host)}
    launch = LaunchSpec(
        cluster_id=cluster_id,
        spec=spec,
        workers=workers,
        environment=environment,
        init_scripts=tuple(scripts),
        env=env,
        spark_conf=_with_environment_conf(spec.spark_conf, environment),
        proxy_base=compute.proxy_base(cluster_id),
    )
    return _Prepared(launch, failures)


async def _launch(compute: Compute, cluster_id: str, expect: State) -> RuntimeHandle | None:
    """Prepare and start a cluster's processes; on failure begin its termination."""
    try:
        prepared = await _prepare(compute, cluster_id, expect)
    except KilnError as exc:
        await _fail(compute, cluster_id, expect, TerminationCode.INVALID_ARGUMENT, exc.message)
        return None
    if prepared is None:
        return None
    reporter = Reporter(compute, cluster_id)
    if prepared.fetch_failures:
        await reporter.event(EventType.INIT_SCRIPTS_STARTED, reported_for_node=compute.bind_host)
        await reporter.event(
            EventType.INIT_SCRIPTS_FINISHED,
            init_scripts={
                "cluster": [r.wire() for r in prepared.fetch_failures],
                "reported_for_node": compute.bind_host,
            },
        )
        bad = next(r for r in prepared.fetch_failures if r.status != "SKIPPED")
        await _fail(compute, cluster_id, expect, TerminationCode.INIT_SCRIPT_FAILURE, bad.output)
        return None
    try:
        return await compute.backend.start(prepared.launch, reporter)
    except LaunchFailed as exc:
        await _fail(compute, cluster_id, expect, exc.code, exc.message)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        log.exception("cluster %s: launch failed", cluster_id)
        await _fail(
            compute, cluster_id, expect, TerminationCode.UNEXPECTED_LAUNCH_FAILURE, repr(exc)
        )
    return None


async def _refresh_live(compute: Compute, cluster_id: str, handle: RuntimeHandle) -> None:
    """Take the driver's status now, so a client that sees RUNNING also sees its executors."""
    probe = await compute.backend.probe(handle)
    if probe.status is not None:
        compute.live[cluster_id] = probe.status


async def _running(compute: Compute, cluster_id: str, expect: State, handle: RuntimeHandle) -> None:
    await _refresh_live(compute, cluster_id, handle)

    async def change(session: AsyncSession, row: Cluster) -> bool:
        if row.state != expect:
            return False
        transition(row, State.RUNNING, "")
        now = now_utc()
        row.last_restarted_time = now
        row.last_activity_time = now
        row.spark_context_id = secrets.randbelow(2**62)
        add_event(
            session,
            cluster_id,
            EventType.RUNNING,
            current_num_workers=row.target_workers,
            target_num_workers=row.target_workers,
        )
        add_event(
            session,
            cluster_id,
            EventType.DRIVER_HEALTHY,
            driver_state_message=f"Spark application {handle.spark_app_id} is running.",
        )
        return True

    await _update(compute, cluster_id, change)


async def start_op(compute: Compute, cluster_id: str, *, restart: bool) -> None:
    """PENDING (or RESTARTING) -> RUNNING: stop any old processes, launch, report."""
    expect = State.RESTARTING if restart else State.PENDING
    old = await _runtime(compute, cluster_id)
    await compute.backend.stop(cluster_id, old)
    compute.live.pop(cluster_id, None)
    handle = await _launch(compute, cluster_id, expect)
    if handle is not None:
        await _running(compute, cluster_id, expect, handle)


async def resize_op(compute: Compute, cluster_id: str) -> None:
    """RESIZING -> RUNNING: add or remove workers (a restart when the Spark mode changes)."""
    async with compute.db.session() as session:
        row = await load_cluster(session, cluster_id)
        if row is None or row.state != State.RESIZING:
            return
        spec = parse_spec(row.spec, compute.catalogue, compute.settings.compute.max_workers)
        target = row.target_workers
    handle = await _runtime(compute, cluster_id)
    if handle is None or not compute.backend.resizable(handle, spec):
        # Local mode <-> standalone: Spark cannot switch under a running driver.
        await compute.backend.stop(cluster_id, handle)
        compute.live.pop(cluster_id, None)
        new = await _launch(compute, cluster_id, State.RESIZING)
        if new is not None:
            await _refresh_live(compute, cluster_id, new)
            await _resized(compute, cluster_id, target, None)
        return
    before = len([p for p in handle.data.get("processes", []) if p.get("role") == "worker"])
    prepared = await _prepare(compute, cluster_id, State.RESIZING)
    if prepared is None:
        return
    try:
        await compute.backend.resize(handle, prepared.launch, target, Reporter(compute, cluster_id))
    except (LaunchFailed, OSError) as exc:
        await _resized(compute, cluster_id, target, str(exc))
        return
    await _refresh_live(compute, cluster_id, handle)
    await _resized(compute, cluster_id, target, None, grew=target > before)


async def _resized(
    compute: Compute, cluster_id: str, target: int, error: str | None, grew: bool = False
) -> None:
    async def change(session: AsyncSession, row: Cluster) -> bool:
        if row.state != State.RESIZING:
            return False
        transition(row, State.RUNNING, "")
        if error is not None:
            add_event(session, cluster_id, EventType.ADD_NODES_FAILED, driver_state_message=error)
        elif grew:
            add_event(
                session,
                cluster_id,
                EventType.UPSIZE_COMPLETED,
                current_num_workers=target,
                target_num_workers=target,
            )
        return True

    await _update(compute, cluster_id, change)


async def deliver_logs(compute: Compute, cluster_id: str, handle: RuntimeHandle | None) -> None:
    """Copy the cluster's logs to its cluster_log_conf destination, recording the outcome."""
    async with compute.db.session() as session:
        row = await load_cluster(session, cluster_id)
        if row is None:
            return
        spec = parse_spec(row.spec, compute.catalogue, compute.settings.compute.max_workers)
    if spec.cluster_log_conf is None:
        return
    error: str | None = None
    try:
        files = compute.backend.log_files(cluster_id, handle)
        await logs.deliver_files(compute.dbfs, spec.cluster_log_conf, cluster_id, files)
    except (KilnError, OSError) as exc:
        error = exc.message if isinstance(exc, KilnError) else str(exc)
        log.warning("cluster %s: log delivery failed: %s", cluster_id, error)

    async def change(session: AsyncSession, row: Cluster) -> bool:
        status: dict[str, Any] = {"last_attempted": to_epoch_ms(now_utc())}
        if error is not None:
            status["last_exception"] = error
        row.log_status = status
        return True

    await _update(compute, cluster_id, change)


async def stop_op(compute: Compute, cluster_id: str) -> None:
    """TERMINATING -> TERMINATED: stop every process, deliver logs, drop the runtime record;
    a permanently deleted cluster is then removed altogether."""
    async with compute.db.session() as session:
        row = await load_cluster(session, cluster_id)
        if row is None or row.state != State.TERMINATING:
            return
    handle = await _runtime(compute, cluster_id)
    await compute.backend.stop(cluster_id, handle)
    compute.live.pop(cluster_id, None)
    await deliver_logs(compute, cluster_id, handle)

    deleted = False

    async def change(session: AsyncSession, row: Cluster) -> bool:
        nonlocal deleted
        if row.state != State.TERMINATING:
            return False
        transition(row, State.TERMINATED, row.state_message)
        row.terminated_time = now_utc()
        runtime = await session.get(ClusterRuntime, cluster_id)
        if runtime is not None:
            await session.delete(runtime)
            await session.flush()
        if row.deleted_at is not None:
            await session.delete(row)
            deleted = True
        return True

    await _update(compute, cluster_id, change)
    if deleted:
        await compute.backend.forget(cluster_id)


async def finish_delete(compute: Compute, cluster_id: str) -> None:
    """Remove a permanently deleted cluster that is already TERMINATED."""

    async def change(session: AsyncSession, row: Cluster) -> bool:
        if row.deleted_at is None or row.state != State.TERMINATED:
            return False
        await session.delete(row)
        return True

    if await _update(compute, cluster_id, change):
        await compute.backend.forget(cluster_id)


@dataclass
class ClusterWatch:
    """What the supervisor remembers between watches of one running cluster."""

    failures: int = 0
    backlog_since: float | None = None
    quiet_since: float | None = None
    last_delivery: float = field(default_factory=time.monotonic)


async def watch_op(compute: Compute, cluster_id: str, memo: ClusterWatch) -> None:
    """Check a RUNNING cluster: a dead driver terminates it (DRIVER_UNRESPONSIVE); otherwise
    record its status and activity, autoscale it and deliver its logs when due."""
    handle = await _runtime(compute, cluster_id)
    if handle is None:
        return
    probe = await compute.backend.probe(handle)
    if not probe.alive:
        await _driver_lost(compute, cluster_id, probe.reason)
        return
    if not probe.responding or probe.status is None:
        memo.failures += 1
        if memo.failures == 3:
            await Reporter(compute, cluster_id).event(
                EventType.DRIVER_NOT_RESPONDING, driver_state_message=probe.reason
            )
        return
    if memo.failures >= 3:
        await Reporter(compute, cluster_id).event(
            EventType.DRIVER_HEALTHY, driver_state_message="The driver answers again."
        )
    memo.failures = 0
    status = probe.status
    compute.live[cluster_id] = status
    await _note_activity(compute, cluster_id, status)
    await _autoscale(compute, cluster_id, handle, status, memo)
    interval = compute.settings.compute.log_delivery_interval_seconds
    if time.monotonic() - memo.last_delivery >= interval:
        memo.last_delivery = time.monotonic()
        await deliver_logs(compute, cluster_id, handle)


async def _driver_lost(compute: Compute, cluster_id: str, reason: str) -> None:
    async def change(session: AsyncSession, row: Cluster) -> bool:
        if row.state not in (State.RUNNING, State.RESIZING):
            return False
        add_event(session, cluster_id, EventType.DRIVER_UNAVAILABLE, driver_state_message=reason)
        begin_termination(
            session,
            row,
            TerminationCode.DRIVER_UNRESPONSIVE,
            f"Driver is unresponsive: {reason}",
            databricks_error_message=reason,
        )
        return True

    log.warning("cluster %s: driver lost: %s", cluster_id, reason)
    await _update(compute, cluster_id, change)
    compute.wake()


async def _note_activity(compute: Compute, cluster_id: str, status: DriverStatus) -> None:
    if status.last_activity is None:
        return
    from datetime import UTC, datetime

    seen = datetime.fromtimestamp(status.last_activity, UTC)

    async def change(session: AsyncSession, row: Cluster) -> bool:
        if (seen - row.last_activity_time).total_seconds() < 1:
            return False
        row.last_activity_time = seen
        return True

    await _update(compute, cluster_id, change)


async def _autoscale(
    compute: Compute,
    cluster_id: str,
    handle: RuntimeHandle,
    status: DriverStatus,
    memo: ClusterWatch,
) -> None:
    async with compute.db.session() as session:
        row = await load_cluster(session, cluster_id)
        if row is None or row.state != State.RUNNING or "autoscale" not in row.spec:
            return
        spec = parse_spec(row.spec, compute.catalogue, compute.settings.compute.max_workers)
        current = row.target_workers
    if spec.autoscale is None:
        return
    settings = compute.settings.compute
    now = time.monotonic()
    target = current
    if status.pending_tasks > 0:
        memo.quiet_since = None
        memo.backlog_since = memo.backlog_since or now
        if now - memo.backlog_since >= settings.autoscale_up_seconds:
            per_worker = max(spec.node_type.num_cores, 1)
            target = min(
                spec.autoscale.max_workers, current + math.ceil(status.pending_tasks / per_worker)
            )
    else:
        memo.backlog_since = None
        busy = status.active_jobs or status.running_tasks
        memo.quiet_since = None if busy else (memo.quiet_since or now)
        if (
            memo.quiet_since is not None
            and now - memo.quiet_since >= settings.autoscale_down_seconds
        ):
            target = max(spec.autoscale.min_workers, current - 1)
    if target == current:
        return
    memo.backlog_since = memo.quiet_since = None

    async def change(session: AsyncSession, row: Cluster) -> bool:
        if row.state != State.RUNNING or row.target_workers != current:
            return False
        row.target_workers = target
        add_event(
            session,
            cluster_id,
            EventType.RESIZING,
            current_num_workers=current,
            target_num_workers=target,
            cause="AUTOSCALE",
        )
        return True

    if not await _update(compute, cluster_id, change):
        return
    prepared = await _prepare(compute, cluster_id, State.RUNNING)
    if prepared is None:
        return
    reporter = Reporter(compute, cluster_id)
    try:
        await compute.backend.resize(handle, prepared.launch, target, reporter)
    except (LaunchFailed, OSError) as exc:
        await reporter.event(EventType.AUTOSCALING_FAILED, driver_state_message=str(exc))
        return
    if target > current:
        await reporter.event(
            EventType.UPSIZE_COMPLETED,
            current_num_workers=target,
            target_num_workers=target,
            cause="AUTOSCALE",
        )
