"""The cluster lifecycle driven by the supervisor, against a fake backend and a real store:
start, failures, terminate-while-pending, driver loss, restart, resize, autoscaling,
autotermination, permanent delete, adoption after a restart and the clean stop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from kiln.compute import Compute, clusters
from kiln.compute.backends.base import (
    BackendContext,
    ClusterBackend,
    DriverStatus,
    LaunchFailed,
    LaunchSpec,
    Probe,
    Reporter,
    RuntimeHandle,
)
from kiln.compute.reconcile import reconcile_at_start
from kiln.compute.spec import ClusterSpec
from kiln.compute.states import EventType, State, TerminationCode
from kiln.dbfs import DbfsStore
from kiln.errors import InvalidState, PermissionDenied
from kiln.identity import Principal
from kiln.identity.users import create_user
from kiln.settings import ComputeSettings, KilnSettings, NodeTypeSetting, to_async_url
from kiln.store import Database, upgrade
from kiln.store.models import Cluster, ClusterEvent, ClusterRuntime


def status(**overrides: Any) -> DriverStatus:
    fields: dict[str, Any] = {
        "app_id": "app-1",
        "ui_port": 4040,
        "spark_version": "4.3.0",
        "executors": (),
        "active_jobs": 0,
        "running_tasks": 0,
        "pending_tasks": 0,
        "last_activity": None,
    }
    fields.update(overrides)
    return DriverStatus(**fields)


class FakeBackend(ClusterBackend):
    """Records calls; clusters are "alive" until stopped or killed by a test."""

    name = "fake"

    def __init__(self, context: BackendContext) -> None:
        super().__init__(context)
        self.started: list[LaunchSpec] = []
        self.stopped: list[str] = []
        self.resized: list[int] = []
        self.forgotten: list[str] = []
        self.alive: set[str] = set()
        self.adoptable: set[str] = set()
        self.fail: LaunchFailed | None = None
        self.gate: asyncio.Event | None = None
        # Set when a start reaches the gate: the backend is then starting processes.
        self.at_gate = asyncio.Event()
        self.status = status()

    async def start(self, launch: LaunchSpec, reporter: Reporter) -> RuntimeHandle:
        handle = RuntimeHandle(
            "fake",
            {
                "cluster_id": launch.cluster_id,
                "workers": launch.workers,
                "standalone": launch.spec.standalone,
            },
        )
        await reporter.record(handle)
        if self.gate is not None:
            self.at_gate.set()
            await self.gate.wait()
        if self.fail is not None:
            raise self.fail
        handle.control_url, handle.spark_app_id = "fake://driver", "app-1"
        await reporter.record(handle)
        self.started.append(launch)
        self.alive.add(launch.cluster_id)
        return handle

    async def resize(
        self, handle: RuntimeHandle, launch: LaunchSpec, workers: int, reporter: Reporter
    ) -> RuntimeHandle:
        self.resized.append(workers)
        handle.data["workers"] = workers
        await reporter.record(handle)
        return handle

    def resizable(self, handle: RuntimeHandle, spec: ClusterSpec) -> bool:
        return bool(handle.data["standalone"]) == spec.standalone

    async def stop(self, cluster_id: str, handle: RuntimeHandle | None) -> None:
        self.stopped.append(cluster_id)
        self.alive.discard(cluster_id)

    async def probe(self, handle: RuntimeHandle) -> Probe:
        if handle.data["cluster_id"] not in self.alive:
            return Probe(False, False, reason="The driver process (pid 1) exited.")
        return Probe(True, True, self.status)

    async def adopt(self, handle: RuntimeHandle) -> bool:
        return handle.data["cluster_id"] in self.adoptable

    async def forget(self, cluster_id: str) -> None:
        self.forgotten.append(cluster_id)


@dataclass
class World:
    compute: Compute
    backend: FakeBackend
    admin: Principal

    async def settle(self, rounds: int = 6) -> None:
        """Tick and let every operation finish, a few times over."""
        supervisor = self.compute.supervisor
        for _ in range(rounds):
            await supervisor.tick()
            for _, task in list(supervisor.operations.values()):
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def row(self, cluster_id: str) -> Cluster | None:
        async with self.compute.db.session() as session:
            return await session.get(Cluster, cluster_id)

    async def state(self, cluster_id: str) -> str:
        row = await self.row(cluster_id)
        assert row is not None
        return row.state

    async def events(self, cluster_id: str) -> list[str]:
        async with self.compute.db.session() as session:
            rows = await session.scalars(
                select(ClusterEvent.type)
                .where(ClusterEvent.cluster_id == cluster_id)
                .order_by(ClusterEvent.id)
            )
            return list(rows.all())

    async def create(self, **spec: Any) -> str:
        body = {"spark_version": "16.4.x-scala2.13", "node_type_id": "small", **spec}
        async with self.compute.db.session() as session:
            row = await clusters.create_cluster(session, self.compute, self.admin, body)
            return row.cluster_id

    async def call(self, action: Any, *args: Any, **kwargs: Any) -> None:
        async with self.compute.db.session() as session:
            await action(session, self.compute, self.admin, *args, **kwargs)


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    url = f"sqlite:///{tmp_path / 'kiln.db'}"
    upgrade(url)
    db = Database(to_async_url(url))
    settings = KilnSettings(
        data_dir=tmp_path / "data",
        compute=ComputeSettings(
            node_types=[NodeTypeSetting(node_type_id="small", num_cores=1, memory_mb=1024)],
            autotermination_minute_seconds=0.001,
            autoscale_up_seconds=0,
            autoscale_down_seconds=0,
        ),
    )
    backend = FakeBackend(BackendContext(settings))
    compute = Compute(settings, db, DbfsStore(str(tmp_path / "dbfs")), backend=backend)
    async with db.session() as session:
        user = await create_user(session, "admin@example.com")
        admin = Principal(user.id, user.user_name, True, "")
    try:
        yield World(compute, backend, admin)
    finally:
        # Shut down as the server does: every service and every cluster.
        compute.started = True
        await compute.stop()
        await db.dispose()


async def test_create_starts_the_cluster(world: World) -> None:
    cid = await world.create(num_workers=2, spark_env_vars={"A": "1"})
    assert await world.state(cid) == State.PENDING
    await world.settle()
    assert await world.state(cid) == State.RUNNING
    launch = world.backend.started[0]
    assert launch.workers == 2 and launch.env["A"] == "1"
    assert launch.env["DB_CLUSTER_ID"] == cid
    assert launch.proxy_base == f"/driver-proxy/o/1/{cid}"
    assert await world.events(cid) == ["CREATING", "RUNNING", "DRIVER_HEALTHY"]
    assert world.compute.live[cid].app_id == "app-1"


async def test_terminate_stops_processes_and_keeps_the_config(world: World) -> None:
    cid = await world.create()
    await world.settle()
    await world.call(clusters.terminate_cluster, cid)
    await world.settle()
    row = await world.row(cid)
    assert row is not None and row.state == State.TERMINATED
    assert row.termination_reason is not None
    assert row.termination_reason["code"] == "USER_REQUEST"
    assert cid in world.backend.stopped and cid not in world.backend.alive
    async with world.compute.db.session() as session:
        assert await session.get(ClusterRuntime, cid) is None
    # Terminating a terminated cluster is a no-op; restarting it is refused.
    await world.call(clusters.terminate_cluster, cid)
    with pytest.raises(InvalidState):
        await world.call(clusters.restart_cluster, cid)
    with pytest.raises(InvalidState):
        await world.call(clusters.resize_cluster, cid, 2)


async def test_launch_failure_terminates_with_its_reason(world: World) -> None:
    world.backend.fail = LaunchFailed(TerminationCode.INIT_SCRIPT_FAILURE, "script exited 3")
    cid = await world.create()
    await world.settle()
    row = await world.row(cid)
    assert row is not None and row.state == State.TERMINATED
    assert row.termination_reason is not None
    assert row.termination_reason["code"] == "INIT_SCRIPT_FAILURE"
    assert row.termination_reason["type"] == "CLIENT_ERROR"
    assert "script exited 3" in row.state_message
    assert cid in world.backend.stopped


async def test_terminate_while_pending_cancels_the_start(world: World) -> None:
    world.backend.gate = asyncio.Event()
    cid = await world.create()
    await world.compute.supervisor.tick()
    # Terminate once the backend is starting processes (not at a fixed delay, which a busy
    # machine outlasts while the start is still recording its first state).
    await asyncio.wait_for(world.backend.at_gate.wait(), timeout=60)
    await world.call(clusters.terminate_cluster, cid)
    await world.settle()
    assert await world.state(cid) == State.TERMINATED
    assert world.backend.started == []
    assert cid in world.backend.stopped


async def test_a_dead_driver_terminates_the_cluster(world: World) -> None:
    cid = await world.create()
    await world.settle()
    world.backend.alive.discard(cid)
    await world.settle()
    row = await world.row(cid)
    assert row is not None and row.state == State.TERMINATED
    assert row.termination_reason is not None
    assert row.termination_reason["code"] == "DRIVER_UNRESPONSIVE"
    assert "exited" in row.termination_reason["parameters"]["databricks_error_message"]
    events = await world.events(cid)
    assert events[-2:] == ["DRIVER_UNAVAILABLE", "TERMINATING"]


async def test_edit_of_a_running_cluster_restarts_it(world: World) -> None:
    cid = await world.create(num_workers=1)
    await world.settle()
    body = {
        "cluster_id": cid,
        "spark_version": "16.4.x-scala2.13",
        "node_type_id": "small",
        "num_workers": 2,
        "spark_conf": {"spark.sql.shuffle.partitions": "4"},
    }
    async with world.compute.db.session() as session:
        await clusters.edit_cluster(session, world.compute, world.admin, body)
    assert await world.state(cid) == State.RESTARTING
    await world.settle()
    assert await world.state(cid) == State.RUNNING
    assert len(world.backend.started) == 2
    assert world.backend.started[1].workers == 2
    assert world.backend.started[1].spark_conf["spark.sql.shuffle.partitions"] == "4"
    events = await world.events(cid)
    assert "EDITED" in events and "RESTARTING" in events


async def test_resize_and_autoscale(world: World) -> None:
    cid = await world.create(num_workers=1)
    await world.settle()
    await world.call(clusters.resize_cluster, cid, 2)
    assert await world.state(cid) == State.RESIZING
    await world.settle()
    assert await world.state(cid) == State.RUNNING
    assert world.backend.resized == [2]
    assert "UPSIZE_COMPLETED" in await world.events(cid)
    # Now autoscale 1..3: a backlog adds workers, a quiet cluster sheds them.
    await world.call(clusters.resize_cluster, cid, None, {"min_workers": 1, "max_workers": 3})
    await world.settle()
    world.backend.status = status(pending_tasks=5, active_jobs=1)
    await world.settle(rounds=2)
    row = await world.row(cid)
    assert row is not None and row.target_workers == 3
    world.backend.status = status()
    await world.settle(rounds=4)
    row = await world.row(cid)
    assert row is not None and row.target_workers == 1
    assert world.backend.resized[-1] == 1


async def test_single_node_cluster_becomes_standalone_when_resized(world: World) -> None:
    cid = await world.create(num_workers=0)
    await world.settle()
    await world.call(clusters.resize_cluster, cid, 2)
    await world.settle()
    assert await world.state(cid) == State.RUNNING
    assert world.backend.started[-1].spec.standalone
    assert world.backend.started[-1].workers == 2


async def test_autotermination_after_idle_time(world: World) -> None:
    busy = await world.create(autotermination_minutes=10)
    idle = await world.create(autotermination_minutes=10)
    never = await world.create()
    await world.settle()
    world.compute.live[busy] = status(active_jobs=1, running_tasks=2)
    await asyncio.sleep(0.05)
    terminated = await world.compute.autotermination.tick()
    assert terminated == [idle]
    await world.settle()
    row = await world.row(idle)
    assert row is not None and row.state == State.TERMINATED
    assert row.termination_reason is not None
    assert row.termination_reason["code"] == "INACTIVITY"
    assert row.termination_reason["parameters"]["inactivity_duration_min"] == "10"
    assert await world.state(never) == State.RUNNING


async def test_permanent_delete_removes_everything(world: World) -> None:
    cid = await world.create()
    await world.settle()
    await world.call(clusters.permanent_delete, cid)
    # Invisible to the API at once...
    async with world.compute.db.session() as session:
        with pytest.raises(Exception, match="does not exist"):
            await clusters.get_cluster(session, world.compute, cid)
    await world.settle()
    # ...and gone once its processes are.
    assert await world.row(cid) is None
    assert world.backend.forgotten == [cid]
    assert cid in world.backend.stopped


async def test_restart_adopts_live_clusters_and_reconciles_dead_ones(world: World) -> None:
    live = await world.create()
    dead = await world.create()
    await world.settle()
    world.backend.adoptable = {live}
    await reconcile_at_start(world.compute)
    assert await world.state(live) == State.RUNNING
    assert (await world.events(live))[-1] == "DRIVER_HEALTHY"
    await world.settle()
    row = await world.row(dead)
    assert row is not None and row.state == State.TERMINATED
    assert row.termination_reason is not None
    assert row.termination_reason["code"] == "DRIVER_UNRESPONSIVE"
    assert "gone" in row.state_message


async def test_clean_stop_terminates_every_cluster(world: World) -> None:
    first, second = await world.create(), await world.create()
    await world.settle()
    world.compute.started = True
    await world.compute.stop()
    for cid in (first, second):
        row = await world.row(cid)
        assert row is not None and row.state == State.TERMINATED
        assert cid in world.backend.stopped
    assert world.backend.alive == set()


async def test_only_owners_and_admins_manage(world: World) -> None:
    cid = await world.create()
    other = Principal(12345, "other@example.com", False, "")
    async with world.compute.db.session() as session:
        with pytest.raises(PermissionDenied):
            await clusters.terminate_cluster(session, world.compute, other, cid)
        with pytest.raises(PermissionDenied):
            await clusters.pin(session, other, cid, pinned=True)


async def test_events_page_through(world: World) -> None:
    cid = await world.create()
    await world.settle()
    for _ in range(3):
        await world.call(clusters.restart_cluster, cid)
        await world.settle()
    async with world.compute.db.session() as session:
        everything = await clusters.cluster_events(session, {"cluster_id": cid, "limit": 500})
        seen, body = [], {"cluster_id": cid, "limit": 2}
        while True:
            page = await clusters.cluster_events(session, body)
            seen.extend(e.id for e in page.events)
            if page.next_page is None:
                break
            body = page.next_page
    assert seen == [e.id for e in everything.events]
    assert everything.total_count == len(seen) >= 10
    types = [e.type for e in everything.events]
    assert types[0] == EventType.DRIVER_HEALTHY and types[-1] == EventType.CREATING
