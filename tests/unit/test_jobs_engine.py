"""The jobs engine against a real store, with a task runner and cluster provider that exist
only in these tests (no cluster needed): DAG runs, for_each fan-out, retries, timeouts,
cancels, repair, queueing, idempotency, task values, webhooks, the scheduler, and a crash of
the control plane in the middle of a run (resumed, never executed twice)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from kiln.errors import InvalidParameterValue, InvalidState, PermissionDenied
from kiln.identity import Principal
from kiln.identity.users import create_user
from kiln.jobs import Jobs
from kiln.jobs import jobs_service as job_ops
from kiln.jobs import runs_service as run_ops
from kiln.jobs.runners.base import ClusterRequest, Reporter, TaskContext, TaskOutcome
from kiln.jobs.states import ResultState
from kiln.settings import KilnSettings, to_async_url
from kiln.store import Database, upgrade
from kiln.store.models import Job, JobRun, JobTaskRun, now_utc

R = ResultState
_work_ids = itertools.count(1)


class FakeRunner:
    """A notebook_task runner for these tests; the notebook path says what the task does:

    /ok, /fail, /flaky/<n> (its first n executions fail), /sleep/<seconds>, /values (sets its
    base parameters as task values), /big (a 49 KiB value), /gate/<name> (runs until the test
    opens the gate), /param (what its `path` parameter says). Paths under /nr/ cannot be
    resumed after a restart.

    Work "on the cluster" outlives the control plane, as a command in a driver does: a resumed
    attempt waits for the same work instead of starting it again.
    """

    def __init__(self) -> None:
        self.executions: list[tuple[str, dict[str, str]]] = []
        self.resumed: list[str] = []
        self.work: dict[str, asyncio.Task[TaskOutcome]] = {}
        self.gates: dict[str, asyncio.Event] = {}
        self.active = 0
        self.most_active = 0

    def gate(self, name: str) -> asyncio.Event:
        return self.gates.setdefault(name, asyncio.Event())

    def resumable(self, checkpoint: Mapping[str, Any]) -> bool:
        return "work" in checkpoint and not checkpoint.get("not_resumable")

    async def run(self, ctx: TaskContext) -> TaskOutcome:
        if ctx.resume:
            self.resumed.append(ctx.task_key)
            work = self.work[ctx.checkpoint["work"]]
        else:
            body = ctx.spec["notebook_task"]
            params = dict(body.get("base_parameters") or {})
            self.executions.append((ctx.task_key, params))
            work_id = f"w{next(_work_ids)}"
            work = asyncio.create_task(self._work(ctx, body["notebook_path"], params))
            self.work[work_id] = work
            await ctx.mark_started(
                {"work": work_id, "not_resumable": "/nr/" in body["notebook_path"]}
            )
        try:
            return await asyncio.shield(work)
        except asyncio.CancelledError:
            if not ctx.stopping() and not work.done():
                work.cancel()
            raise

    async def _work(self, ctx: TaskContext, path: str, params: dict[str, str]) -> TaskOutcome:
        self.active += 1
        self.most_active = max(self.most_active, self.active)
        try:
            path = path.replace("/nr/", "/")
            if path == "/param":
                path = params["path"]
            if path == "/fail":
                return TaskOutcome.failed("The notebook failed.", trace="Traceback: boom")
            if path.startswith("/flaky/"):
                runs = sum(1 for key, _ in self.executions if key == ctx.task_key)
                if runs <= int(path.rsplit("/", 1)[1]):
                    return TaskOutcome.failed(f"flaky attempt {ctx.attempt}")
            if path.startswith("/sleep/"):
                await asyncio.sleep(float(path.rsplit("/", 1)[1]))
            if path.startswith("/gate/"):
                await self.gate(path.rsplit("/", 1)[1]).wait()
            values: dict[str, Any] = {}
            if path == "/values":
                for key, value in params.items():
                    with contextlib.suppress(ValueError):
                        value = json.loads(value)
                    values[key] = value
            if path == "/big":
                values["big"] = "x" * (49 * 1024)
            return TaskOutcome(
                R.SUCCESS,
                exit_value=f"done:{json.dumps(params, sort_keys=True)}",
                task_values=values,
            )
        finally:
            self.active -= 1


class FakeClusters:
    """Clusters that exist in name only: c-1 exists; new and job clusters are made up."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.created: list[str] = []
        self.released: list[int] = []
        self.ended: list[str] = []

    async def check(
        self,
        session: AsyncSession,
        principal: Principal,
        clusters: list[tuple[str, str]],
        new_clusters: list[tuple[str, dict[str, Any]]],
    ) -> None:
        for where, cluster_id in clusters:
            if cluster_id != "c-1":
                raise InvalidParameterValue(f"{where}: Cluster {cluster_id} does not exist.")
        for where, raw in new_clusters:
            if "spark_version" not in raw:
                raise InvalidParameterValue(f"{where}.spark_version: required.")

    async def acquire(self, request: ClusterRequest, report: Reporter) -> str:
        task = request.task
        await report("Waiting for the cluster")
        if task.get("existing_cluster_id"):
            return str(task["existing_cluster_id"])
        if task.get("new_cluster"):
            cluster_id = f"task-{request.task_run_id}"
            self.created.append(cluster_id)
            return cluster_id
        key = task["job_cluster_key"]
        async with self.db.session() as session:
            run = await session.get(JobRun, request.job_run_id, populate_existing=True)
            assert run is not None
            if key not in run.job_clusters:
                run.job_clusters = {**run.job_clusters, key: f"job-{request.job_run_id}-{key}"}
                self.created.append(run.job_clusters[key])
            return run.job_clusters[key]

    async def release(self, request: ClusterRequest) -> None:
        self.released.append(request.task_run_id)

    async def end_run(self, session: AsyncSession, cluster_ids: list[str]) -> None:
        self.ended.extend(cluster_ids)


@dataclass
class World:
    db: Database
    settings: KilnSettings
    runner: FakeRunner
    clusters: FakeClusters
    admin: Principal
    jobs: Jobs
    others: list[Jobs] = field(default_factory=list)

    def restart(self) -> Jobs:
        """A new control plane on the same store (the old one must be stopped first)."""
        self.jobs = Jobs(
            self.settings,
            self.db,
            None,
            runners={"notebook_task": self.runner},
            clusters=self.clusters,
        )
        self.others.append(self.jobs)
        return self.jobs


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    url = f"sqlite:///{tmp_path / 'kiln.db'}"
    upgrade(url)
    db = Database(to_async_url(url))
    async with db.session() as session:
        user = await create_user(session, "owner@example.com")
        admin = Principal(user.id, user.user_name, False, "")
    settings = KilnSettings(data_dir=tmp_path / "data")
    runner = FakeRunner()
    clusters = FakeClusters(db)
    w = World(db, settings, runner, clusters, admin, jobs=None)  # type: ignore[arg-type]
    w.restart()
    await w.jobs.engine.start()
    try:
        yield w
    finally:
        for jobs in w.others:
            await jobs.stop()
        for work in runner.work.values():
            work.cancel()
        for gate in runner.gates.values():
            gate.set()
        await db.dispose()


def nb(key: str, path: str = "/ok", deps: tuple[str, ...] = (), **extra: Any) -> dict[str, Any]:
    task: dict[str, Any] = {
        "task_key": key,
        "notebook_task": {"notebook_path": path},
        "existing_cluster_id": "c-1",
        **extra,
    }
    if "params" in extra:
        task["notebook_task"]["base_parameters"] = task.pop("params")
    if deps:
        task["depends_on"] = [{"task_key": d} for d in deps]
    return task


async def create(w: World, settings: dict[str, Any]) -> int:
    async with w.db.session() as session:
        return await job_ops.create_job(session, w.jobs, w.admin, settings)


async def start(w: World, job_id: int, **body: Any) -> int:
    run = await run_ops.run_now(w.jobs, w.admin, {"job_id": job_id, **body})
    return run.run_id


async def finish(w: World, run_id: int, limit: float = 60) -> dict[str, Any]:
    await asyncio.wait_for(w.jobs.engine.wait_run(run_id), limit)
    return await view(w, run_id)


async def view(w: World, run_id: int, **flags: bool) -> dict[str, Any]:
    async with w.db.session() as session:
        return await run_ops.get_run(session, w.jobs, run_id, **flags)


def tasks(run: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["task_key"]: t for t in run["tasks"]}


def results(run: dict[str, Any]) -> dict[str, str | None]:
    return {k: t["state"].get("result_state") for k, t in tasks(run).items()}


async def output(w: World, run_id: int) -> dict[str, Any]:
    async with w.db.session() as session:
        return await run_ops.get_run_output(session, w.jobs, run_id)


async def wait_until(check: Any, what: str, limit: float = 30) -> Any:
    deadline = asyncio.get_running_loop().time() + limit
    while True:
        value = await check()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


# -- runs ------------------------------------------------------------------------------------


async def test_dag_with_conditions_run_if_and_task_values(world: World) -> None:
    job_id = await create(
        world,
        {
            "name": "dag",
            "parameters": [{"name": "limit", "default": "2"}],
            "tasks": [
                nb("produce", "/values", params={"items": '["a", "b", "c"]', "count": "3"}),
                {
                    "task_key": "enough",
                    "depends_on": [{"task_key": "produce"}],
                    "condition_task": {
                        "op": "GREATER_THAN",
                        "left": "{{tasks.produce.values.count}}",
                        "right": "{{job.parameters.limit}}",
                    },
                },
                {
                    **nb("big", deps=("enough",)),
                    "depends_on": [{"task_key": "enough", "outcome": "true"}],
                },
                {
                    **nb("small", deps=("enough",)),
                    "depends_on": [{"task_key": "enough", "outcome": "false"}],
                },
                nb("broken", "/fail", deps=("produce",)),
                nb("after_broken", deps=("broken",)),
                nb("on_failure", deps=("broken",), run_if="AT_LEAST_ONE_FAILED"),
                nb("all_failed", deps=("broken", "big"), run_if="ALL_FAILED"),
                nb("cleanup", deps=("big", "small", "after_broken"), run_if="ALL_DONE"),
            ],
        },
    )
    run = await finish(world, await start(world, job_id))
    assert results(run) == {
        "produce": "SUCCESS",
        "enough": "SUCCESS",
        "big": "SUCCESS",
        "small": "EXCLUDED",
        "broken": "FAILED",
        "after_broken": "UPSTREAM_FAILED",
        "on_failure": "SUCCESS",
        "all_failed": "EXCLUDED",
        "cleanup": "SUCCESS",
    }
    # A leaf (all_failed is excluded, cleanup and on_failure succeeded): success with failures.
    assert run["state"]["result_state"] == "SUCCESS_WITH_FAILURES"
    assert run["state"]["life_cycle_state"] == "TERMINATED"
    assert tasks(run)["enough"]["condition_task"]["outcome"] == "true"
    assert tasks(run)["small"]["state"]["life_cycle_state"] == "SKIPPED"
    assert run["status"]["termination_details"]["code"] == "SUCCESS_WITH_FAILURES"
    broken = await output(world, tasks(run)["broken"]["run_id"])
    assert broken["error"] == "The notebook failed." and broken["error_trace"] == "Traceback: boom"
    produced = await output(world, tasks(run)["produce"]["run_id"])
    assert produced["notebook_output"]["result"].startswith("done:")
    assert produced["metadata"]["tasks"][0]["task_key"] == "produce"
    # Job parameters reach notebook widgets.
    assert dict(world.runner.executions)["big"] == {"limit": "2"}


async def test_for_each_over_a_reference_with_concurrency(world: World) -> None:
    job_id = await create(
        world,
        {
            "tasks": [
                nb("gen", "/values", params={"items": json.dumps(list(range(12)))}),
                {
                    "task_key": "each",
                    "depends_on": [{"task_key": "gen"}],
                    "for_each_task": {
                        "inputs": "{{tasks.gen.values.items}}",
                        "concurrency": 4,
                        "task": nb(
                            "work",
                            "/sleep/0.05",
                            params={"i": "{{input}}", "run": "{{job.run_id}}"},
                        ),
                    },
                },
            ]
        },
    )
    run_id = await start(world, job_id)
    run = await finish(world, run_id)
    assert run["state"]["result_state"] == "SUCCESS"
    each = tasks(run)["each"]
    stats = each["for_each_task"]["stats"]["task_run_stats"]
    assert stats == {
        "total_iterations": 12,
        "scheduled_iterations": 0,
        "active_iterations": 0,
        "completed_iterations": 12,
        "succeeded_iterations": 12,
        "failed_iterations": 0,
    }
    assert world.runner.most_active <= 4
    inputs = sorted(int(p["i"]) for k, p in world.runner.executions if k == "work")
    assert inputs == list(range(12))
    assert {p["run"] for k, p in world.runner.executions if k == "work"} == {str(run_id)}
    # Each iteration is a task run of its own.
    each_run = await view(world, each["run_id"])
    assert [i["input"] for i in each_run["iterations"]] == [str(i) for i in range(12)]
    assert len({i["run_id"] for i in each_run["iterations"]}) == 12
    first = await output(world, each_run["iterations"][0]["run_id"])
    assert '"i": "0"' in first["notebook_output"]["result"]


async def test_for_each_failures_and_bad_inputs(world: World) -> None:
    job_id = await create(
        world,
        {
            "tasks": [
                {
                    "task_key": "each",
                    "for_each_task": {
                        "inputs": '["/ok", "/fail", "/ok"]',
                        "task": nb("w", "/param", params={"path": "{{input}}"}),
                    },
                },
                {
                    "task_key": "gen",
                    "condition_task": {"op": "EQUAL_TO", "left": "a", "right": "a"},
                },
                {
                    "task_key": "broken",
                    "depends_on": [{"task_key": "gen"}],
                    "for_each_task": {"inputs": "{{tasks.gen.values.nothing}}", "task": nb("w2")},
                },
            ]
        },
    )
    run = await finish(world, await start(world, job_id))
    assert results(run) == {"each": "FAILED", "gen": "SUCCESS", "broken": "FAILED"}
    assert "1 of 3" in tasks(run)["each"]["state"]["state_message"]
    assert "set no value" in tasks(run)["broken"]["state"]["state_message"]


async def test_retries(world: World) -> None:
    job_id = await create(
        world,
        {
            "tasks": [
                nb("flaky", "/flaky/2", max_retries=3, min_retry_interval_millis=200),
                nb("hopeless", "/fail", max_retries=1),
            ]
        },
    )
    run = await finish(world, await start(world, job_id))
    flaky = tasks(run)["flaky"]
    assert flaky["state"]["result_state"] == "SUCCESS" and flaky["attempt_number"] == 2
    assert tasks(run)["hopeless"]["attempt_number"] == 1
    assert run["state"]["result_state"] == "FAILED"
    async with world.db.session() as session:
        attempts = (
            await session.scalars(
                select(JobTaskRun)
                .where(JobTaskRun.task_key == "flaky")
                .order_by(JobTaskRun.attempt_number)
            )
        ).all()
    assert [a.attempt_number for a in attempts] == [0, 1, 2]
    assert [a.result_state for a in attempts] == ["FAILED", "FAILED", "SUCCESS"]
    assert {a.original_attempt_run_id for a in attempts[1:]} == {attempts[0].run_id}
    for earlier, later in itertools.pairwise(attempts):
        assert earlier.end_time is not None and later.retry_at is not None
        assert later.retry_at - earlier.end_time >= timedelta(milliseconds=200)


async def test_task_and_job_timeouts(world: World) -> None:
    job_id = await create(
        world,
        {
            "tasks": [
                nb("slow", "/sleep/30", timeout_seconds=1),
                nb(
                    "slow_retried",
                    "/sleep/30",
                    timeout_seconds=1,
                    max_retries=1,
                    retry_on_timeout=True,
                ),
            ]
        },
    )
    run = await finish(world, await start(world, job_id))
    assert results(run) == {"slow": "TIMEDOUT", "slow_retried": "TIMEDOUT"}
    assert tasks(run)["slow"]["attempt_number"] == 0
    assert tasks(run)["slow_retried"]["attempt_number"] == 1
    job_id = await create(world, {"timeout_seconds": 1, "tasks": [nb("forever", "/sleep/60")]})
    run = await finish(world, await start(world, job_id))
    assert run["state"]["result_state"] == "TIMEDOUT"
    assert run["state"]["user_cancelled_or_timedout"] is True
    assert results(run) == {"forever": "TIMEDOUT"}


async def test_cancel_a_run_and_a_task(world: World) -> None:
    job_id = await create(
        world,
        {"tasks": [nb("wait", "/gate/never"), nb("next", deps=("wait",))]},
    )
    run_id = await start(world, job_id)

    async def running() -> bool:
        return tasks(await view(world, run_id))["wait"]["state"]["life_cycle_state"] == "RUNNING"

    await wait_until(running, "the task to run")
    await run_ops.cancel_run(world.jobs, world.admin, run_id)
    run = await finish(world, run_id)
    assert run["state"]["result_state"] == "CANCELED"
    assert run["status"]["termination_details"]["code"] == "USER_CANCELED"
    assert results(run) == {"wait": "CANCELED", "next": "CANCELED"}
    # Cancelling one task: what depends on it is upstream-canceled, cleanup still runs.
    job_id = await create(
        world,
        {
            "tasks": [
                nb("wait", "/gate/never2"),
                nb("next", deps=("wait",)),
                nb("cleanup", deps=("wait",), run_if="ALL_DONE"),
            ]
        },
    )
    run_id = await start(world, job_id)
    await wait_until(running, "the task to run")
    task_run = tasks(await view(world, run_id))["wait"]["run_id"]
    await run_ops.cancel_run(world.jobs, world.admin, task_run)
    run = await finish(world, run_id)
    assert results(run) == {"wait": "CANCELED", "next": "UPSTREAM_CANCELED", "cleanup": "SUCCESS"}


async def test_repair_reruns_only_the_failed_task_and_what_depends_on_it(world: World) -> None:
    job_id = await create(
        world,
        {
            "tasks": [
                nb("a"),
                nb("b", "/flaky/1"),
                nb("c", deps=("b",)),
                nb("d", deps=("a",)),
            ]
        },
    )
    run_id = await start(world, job_id)
    run = await finish(world, run_id)
    assert results(run) == {"a": "SUCCESS", "b": "FAILED", "c": "UPSTREAM_FAILED", "d": "SUCCESS"}
    before = Counter(k for k, _ in world.runner.executions)
    with pytest.raises(InvalidParameterValue, match="rerun_tasks"):
        await run_ops.repair_run(world.jobs, world.admin, {"run_id": run_id, "rerun_tasks": ["zz"]})
    repair_id = await run_ops.repair_run(
        world.jobs, world.admin, {"run_id": run_id, "rerun_tasks": ["b"]}
    )
    run = await finish(world, run_id)
    assert run["state"]["result_state"] == "SUCCESS"
    assert results(run) == {"a": "SUCCESS", "b": "SUCCESS", "c": "SUCCESS", "d": "SUCCESS"}
    after = Counter(k for k, _ in world.runner.executions)
    assert after - before == Counter({"b": 1, "c": 1})
    history = (await view(world, run_id, include_history=True))["repair_history"]
    assert [h["type"] for h in history] == ["ORIGINAL", "REPAIR"]
    assert history[1]["id"] == repair_id and history[1]["state"]["result_state"] == "SUCCESS"
    # A second repair must name the latest one.
    with pytest.raises(InvalidParameterValue, match="latest_repair_id"):
        await run_ops.repair_run(world.jobs, world.admin, {"run_id": run_id, "rerun_tasks": ["a"]})


async def test_repair_refuses_runs_in_progress(world: World) -> None:
    job_id = await create(world, {"tasks": [nb("wait", "/gate/g")]})
    run_id = await start(world, job_id)
    with pytest.raises(InvalidState):
        await run_ops.repair_run(
            world.jobs, world.admin, {"run_id": run_id, "rerun_tasks": ["wait"]}
        )
    world.runner.gate("g").set()
    await finish(world, run_id)


async def test_max_concurrent_runs_queue_and_skip(world: World) -> None:
    queued_job = await create(
        world,
        {"max_concurrent_runs": 1, "queue": {"enabled": True}, "tasks": [nb("t", "/gate/q")]},
    )
    first = await start(world, queued_job)
    second = await start(world, queued_job)
    assert (await view(world, second))["state"]["life_cycle_state"] == "QUEUED"
    assert (await view(world, second))["status"]["queue_details"]["code"] == (
        "MAX_CONCURRENT_RUNS_REACHED"
    )
    world.runner.gate("q").set()
    assert (await finish(world, first))["state"]["result_state"] == "SUCCESS"
    assert (await finish(world, second))["state"]["result_state"] == "SUCCESS"
    skipped_job = await create(world, {"max_concurrent_runs": 1, "tasks": [nb("t", "/gate/s")]})
    first = await start(world, skipped_job)
    run = await view(world, await start(world, skipped_job))
    assert run["state"]["life_cycle_state"] == "SKIPPED"
    assert run["state"]["result_state"] == "MAXIMUM_CONCURRENT_RUNS_REACHED"
    world.runner.gate("s").set()
    await finish(world, first)


async def test_idempotency_token_starts_one_run(world: World) -> None:
    job_id = await create(world, {"max_concurrent_runs": 5, "tasks": [nb("t")]})
    first = await start(world, job_id, idempotency_token="nightly-2024-01-01")
    again = await start(world, job_id, idempotency_token="nightly-2024-01-01")
    other = await start(world, job_id, idempotency_token="nightly-2024-01-02")
    assert first == again != other
    with pytest.raises(InvalidParameterValue, match="idempotency_token"):
        await start(world, job_id, idempotency_token="x" * 65)
    submitted = await run_ops.submit_run(
        world.jobs, world.admin, {"tasks": [nb("t")], "idempotency_token": "once"}
    )
    resubmitted = await run_ops.submit_run(
        world.jobs, world.admin, {"tasks": [nb("t")], "idempotency_token": "once"}
    )
    assert submitted.run_id == resubmitted.run_id
    await finish(world, first)
    await finish(world, other)


async def test_run_job_tasks_and_job_parameters(world: World) -> None:
    child = await create(
        world,
        {
            "parameters": [{"name": "who", "default": "nobody"}],
            "tasks": [nb("child", "/values", params={"x": "1"})],
        },
    )
    parent = await create(
        world,
        {
            "tasks": [
                {
                    "task_key": "call",
                    "run_job_task": {"job_id": child, "job_parameters": {"who": "{{job.id}}"}},
                },
            ]
        },
    )
    run = await finish(world, await start(world, parent))
    assert run["state"]["result_state"] == "SUCCESS"
    out = await output(world, tasks(run)["call"]["run_id"])
    child_run = await view(world, out["run_job_output"]["run_id"])
    assert (
        child_run["trigger"] == "RUN_JOB_TASK"
        and child_run["trigger_info"]["run_id"] == run["run_id"]
    )
    assert child_run["job_parameters"] == [
        {"name": "who", "default": "nobody", "value": str(parent)}
    ]
    # Unknown parameters and jobs are refused up front.
    with pytest.raises(InvalidParameterValue, match=r"no parameter 'nope'"):
        await start(world, child, job_parameters={"nope": "1"})
    with pytest.raises(InvalidParameterValue, match=r"run_job_task\.job_id"):
        await create(world, {"tasks": [{"task_key": "x", "run_job_task": {"job_id": 12345}}]})


async def test_job_clusters_and_new_clusters_end_with_their_run(world: World) -> None:
    job_id = await create(
        world,
        {
            "job_clusters": [{"job_cluster_key": "shared", "new_cluster": {"spark_version": "x"}}],
            "tasks": [
                {
                    "task_key": "a",
                    "notebook_task": {"notebook_path": "/ok"},
                    "job_cluster_key": "shared",
                },
                {
                    "task_key": "b",
                    "notebook_task": {"notebook_path": "/ok"},
                    "job_cluster_key": "shared",
                    "depends_on": [{"task_key": "a"}],
                },
                {
                    "task_key": "c",
                    "notebook_task": {"notebook_path": "/ok"},
                    "new_cluster": {"spark_version": "x"},
                },
            ],
        },
    )
    run = await finish(world, await start(world, job_id))
    shared = f"job-{run['run_id']}-shared"
    assert tasks(run)["a"]["cluster_instance"]["cluster_id"] == shared
    assert tasks(run)["b"]["cluster_instance"]["cluster_id"] == shared
    assert world.clusters.ended == [shared]
    assert world.clusters.released == [tasks(run)["c"]["run_id"]]
    with pytest.raises(InvalidParameterValue, match=r"tasks\[0\].existing_cluster_id"):
        await create(world, {"tasks": [{**nb("x"), "existing_cluster_id": "nope"}]})
    with pytest.raises(InvalidParameterValue, match=r"job_clusters\[0\].new_cluster.spark_version"):
        await create(
            world, {"job_clusters": [{"job_cluster_key": "k", "new_cluster": {}}], "tasks": []}
        )


async def test_task_values_over_48_kib_fail_the_task(world: World) -> None:
    job_id = await create(world, {"tasks": [nb("big", "/big")]})
    run = await finish(world, await start(world, job_id))
    assert results(run) == {"big": "FAILED"}
    assert "48 KiB" in tasks(run)["big"]["state"]["state_message"]


async def test_permissions(world: World) -> None:
    job_id = await create(world, {"tasks": [nb("t")]})
    async with world.db.session() as session:
        user = await create_user(session, "other@example.com")
    other = Principal(user.id, user.user_name, False, "")
    with pytest.raises(PermissionDenied):
        await run_ops.run_now(world.jobs, other, {"job_id": job_id})
    async with world.db.session() as session:
        with pytest.raises(PermissionDenied):
            await job_ops.delete_job(session, world.jobs, other, job_id)


# -- durability ------------------------------------------------------------------------------


async def test_crash_mid_run_resumes_and_never_runs_twice(world: World) -> None:
    job_id = await create(
        world,
        {
            "tasks": [
                {
                    "task_key": "gate",
                    "condition_task": {"op": "EQUAL_TO", "left": "1", "right": "1"},
                },
                {
                    "task_key": "each",
                    "depends_on": [{"task_key": "gate", "outcome": "true"}],
                    "for_each_task": {
                        "inputs": json.dumps(list(range(10))),
                        "concurrency": 8,
                        "task": nb("work", "/gate/crash", params={"i": "{{input}}"}),
                    },
                },
                nb("lost", "/nr/gate/crash"),
                nb("after", deps=("each",)),
            ]
        },
    )
    run_id = await start(world, job_id)

    async def eight_running() -> bool:
        async with world.db.session() as session:
            running = (
                await session.scalars(
                    select(JobTaskRun).where(
                        JobTaskRun.task_key == "work", JobTaskRun.life_cycle_state == "RUNNING"
                    )
                )
            ).all()
        return len(running) == 8

    await wait_until(eight_running, "8 running iterations")
    # The control plane goes away without recording anything, as after kill -9.
    await world.jobs.stop()
    world.restart()
    world.runner.gate("crash").set()
    await world.jobs.start()
    await world.jobs.ready()
    run = await finish(world, run_id)
    assert results(run)["gate"] == "SUCCESS"
    assert results(run)["each"] == "SUCCESS"
    assert results(run)["after"] == "SUCCESS"
    # The attempt that cannot be found again ends with a clear message instead of running twice.
    lost = tasks(run)["lost"]
    assert lost["state"]["life_cycle_state"] == "INTERNAL_ERROR"
    assert "not run again" in lost["state"]["state_message"]
    assert run["state"]["result_state"] == "FAILED"
    executions = Counter(p["i"] for k, p in world.runner.executions if k == "work")
    assert executions == Counter({str(i): 1 for i in range(10)})
    assert sorted(world.runner.resumed) == ["work"] * 8
    assert Counter(k for k, _ in world.runner.executions)["lost"] == 1


async def test_restart_resumes_queued_and_pending_runs(world: World) -> None:
    job_id = await create(
        world, {"max_concurrent_runs": 1, "queue": {"enabled": True}, "tasks": [nb("t", "/gate/r")]}
    )
    first = await start(world, job_id)
    second = await start(world, job_id)
    await world.jobs.stop()
    world.restart()
    await world.jobs.start()
    await world.jobs.ready()
    world.runner.gate("r").set()
    assert (await finish(world, first))["state"]["result_state"] == "SUCCESS"
    assert (await finish(world, second))["state"]["result_state"] == "SUCCESS"
    async with world.db.session() as session:
        owners = (await session.scalars(select(JobRun.owner))).all()
    assert set(owners) == {None}


# -- the scheduler and webhooks ---------------------------------------------------------------


async def test_scheduler_fires_each_tick_once_across_restarts(world: World) -> None:
    job_id = await create(
        world,
        {"schedule": {"quartz_cron_expression": "0 0 0 1 1 ? 2099"}, "tasks": [nb("t")]},
    )
    async with world.db.session() as session:
        job = await session.get(Job, job_id)
        assert job is not None and job.next_fire_at is not None
        # Make a tick due now (the expression is valid; the time is what matters here).
        tick = now_utc() - timedelta(seconds=1)
        await session.execute(update(Job).where(Job.job_id == job_id).values(next_fire_at=tick))
    scheduler = world.jobs.scheduler
    assert await scheduler.tick() == 1
    assert await scheduler.tick() == 0
    # Another control plane on the same store does not fire the same tick.
    await world.jobs.stop()
    world.restart()
    await world.jobs.start()
    await world.jobs.ready()
    assert await world.jobs.scheduler.tick() == 0
    async with world.db.session() as session:
        job = await session.get(Job, job_id, populate_existing=True)
        assert job is not None
        runs = (await session.scalars(select(JobRun).where(JobRun.job_id == job_id))).all()
    assert len(runs) == 1 and runs[0].trigger == "PERIODIC"
    assert job.last_fired_at is not None and abs((job.last_fired_at - tick).total_seconds()) < 1
    assert job.next_fire_at is not None and job.next_fire_at.year == 2099
    await finish(world, runs[0].run_id)


async def test_paused_and_removed_schedules_do_not_fire(world: World) -> None:
    job_id = await create(
        world,
        {
            "schedule": {"quartz_cron_expression": "* * * * * ?", "pause_status": "PAUSED"},
            "tasks": [nb("t")],
        },
    )
    async with world.db.session() as session:
        assert (await session.get(Job, job_id)).next_fire_at is None  # type: ignore[union-attr]
        await job_ops.update_job(
            session,
            world.jobs,
            world.admin,
            job_id,
            {"schedule": {"quartz_cron_expression": "* * * * * ?", "pause_status": "UNPAUSED"}},
            None,
        )
        assert (await session.get(Job, job_id)).next_fire_at is not None  # type: ignore[union-attr]
        await job_ops.update_job(session, world.jobs, world.admin, job_id, None, ["schedule"])
        assert (await session.get(Job, job_id)).next_fire_at is None  # type: ignore[union-attr]


async def test_webhooks_are_posted_on_start_success_and_failure(world: World) -> None:
    received: list[dict[str, Any]] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        )
        received.append(
            {"path": head.split(b" ")[1].decode(), **json.loads(await reader.readexactly(length))}
        )
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    try:
        hooks = {
            "on_start": [{"id": f"{base}/start"}],
            "on_success": [{"id": f"{base}/success"}],
            "on_failure": [{"id": f"{base}/failure"}],
        }
        ok = await create(
            world, {"name": "hooked", "webhook_notifications": hooks, "tasks": [nb("t")]}
        )
        bad = await create(world, {"webhook_notifications": hooks, "tasks": [nb("t", "/fail")]})
        ok_run = await start(world, ok)
        bad_run = await start(world, bad)
        await finish(world, ok_run)
        await finish(world, bad_run)

        async def all_four() -> bool:
            return len(received) >= 4

        await wait_until(all_four, "four webhook calls")
    finally:
        server.close()
        await server.wait_closed()
    by_path = Counter(r["path"] for r in received)
    assert by_path == Counter({"/start": 2, "/success": 1, "/failure": 1})
    success = next(r for r in received if r["path"] == "/success")
    assert success["event_type"] == "jobs.on_success"
    assert success["job"] == {"job_id": ok, "name": "hooked"}
    assert success["run"]["run_id"] == ok_run


# -- lists -----------------------------------------------------------------------------------


async def test_lists_page(world: World) -> None:
    ids = [await create(world, {"name": f"job-{i}", "tasks": [nb("t")]}) for i in range(5)]
    async with world.db.session() as session:
        first = await job_ops.list_jobs(session, limit=2)
        assert [j.job_id for j in first.jobs] == ids[::-1][:2] and first.has_more
        second = await job_ops.list_jobs(session, limit=2, page_token=first.next_page_token)
        assert [j.job_id for j in second.jobs] == ids[::-1][2:4]
        named = await job_ops.list_jobs(session, name="JOB-3")
        assert [j.job_id for j in named.jobs] == [ids[3]]
        with pytest.raises(InvalidParameterValue, match="limit"):
            await job_ops.list_jobs(session, limit=101)
    runs = [await start(world, ids[0]) for _ in range(1)]
    await finish(world, runs[0])
    async with world.db.session() as session:
        page = await run_ops.list_runs(session, world.jobs, job_id=ids[0], completed_only="true")
        assert [r["run_id"] for r in page.runs] == runs
        assert (
            await run_ops.list_runs(session, world.jobs, job_id=ids[0], active_only=True)
        ).runs == []
        with pytest.raises(InvalidParameterValue, match="cannot both"):
            await run_ops.list_runs(session, world.jobs, active_only=True, completed_only=True)


async def test_a_cancel_reaches_a_for_each_going_through_its_iterations(world: World) -> None:
    # Between iterations the driver goes on from its own records; a cancel (written by someone
    # else) makes it read the run again.
    paths = ["/ok", "/ok", "/gate/each-cancel", "/ok", "/ok"]
    job_id = await create(
        world,
        {
            "tasks": [
                {
                    "task_key": "each",
                    "for_each_task": {
                        "inputs": json.dumps(paths),
                        "concurrency": 1,
                        "task": nb("item", "/param", params={"path": "{{input}}"}),
                    },
                }
            ]
        },
    )
    run_id = await start(world, job_id)

    async def gated() -> bool:
        each = tasks(await view(world, run_id))["each"]
        iterations = (await view(world, each["run_id"])).get("iterations", [])
        return any(
            i["state"]["life_cycle_state"] == "RUNNING" and i["input"] == json.dumps(paths[2])
            for i in iterations
        )

    await wait_until(gated, "the third iteration to run")
    await run_ops.cancel_run(world.jobs, world.admin, run_id)
    run = await finish(world, run_id)
    assert run["state"]["result_state"] == "CANCELED"
    each_run = await view(world, tasks(run)["each"]["run_id"])
    ended = [i["state"].get("result_state") for i in each_run["iterations"]]
    assert ended[:3] == ["SUCCESS", "SUCCESS", "CANCELED"], ended
    assert "SUCCESS" not in ended[3:]
    assert len([k for k, _ in world.runner.executions if k == "item"]) == 3


class StartsAtOnceRunner(FakeRunner):
    """A runner that starts its task's code as soon as it has its cluster, as the notebook
    runner does: the engine may record its for_each iterations RUNNING as it launches them."""

    STARTS_AT_ONCE = True


async def test_iterations_recorded_running_at_launch_and_never_run_twice(world: World) -> None:
    # Between iterations on a cluster the one before just had, the driver ends an iteration
    # and marks the next RUNNING in one write; a crash then ends that one, never reruns it.
    await world.jobs.stop()
    world.runner = StartsAtOnceRunner()
    world.restart()
    await world.jobs.start()
    paths = ["/ok", "/values", "/ok", "/ok", "/gate/at-once", "/ok"]
    job_id = await create(
        world,
        {
            "tasks": [
                {
                    "task_key": "each",
                    "for_each_task": {
                        "inputs": json.dumps(paths),
                        "concurrency": 1,
                        "task": nb("item", "/param", params={"path": "{{input}}"}),
                    },
                }
            ]
        },
    )
    run_id = await start(world, job_id)

    async def iterations() -> list[JobTaskRun]:
        async with world.db.session() as session:
            rows = await session.scalars(
                select(JobTaskRun)
                .where(JobTaskRun.job_run_id == run_id, JobTaskRun.task_key == "item")
                .order_by(JobTaskRun.iteration)
            )
            return list(rows.all())

    async def gated() -> bool:
        rows = await iterations()
        return len(rows) == 6 and rows[4].life_cycle_state == "RUNNING"

    await wait_until(gated, "the fifth iteration to run")
    rows = await iterations()
    for row in rows[:4]:
        assert (row.life_cycle_state, row.result_state, row.cluster_id) == (
            "TERMINATED",
            "SUCCESS",
            "c-1",
        )
        assert row.start_time and row.running_at and row.end_time
        assert row.start_time <= row.running_at <= row.end_time
    # The iterations after the first were launched RUNNING (the executor did not mark them).
    assert all(r.running_at == r.start_time for r in rows[1:5])
    assert rows[4].cluster_id == "c-1" and rows[5].life_cycle_state == "QUEUED"
    each = tasks(await view(world, run_id))["each"]
    second = (await view(world, each["run_id"]))["iterations"][1]
    assert "done:" in (await output(world, second["run_id"]))["notebook_output"]["result"]
    # The control plane goes away without recording anything, as after kill -9.
    await world.jobs.stop()
    world.restart()
    world.runner.gate("at-once").set()
    await world.jobs.start()
    await world.jobs.ready()
    run = await finish(world, run_id)
    each_run = await view(world, tasks(run)["each"]["run_id"])
    states = [i["state"]["life_cycle_state"] for i in each_run["iterations"]]
    assert states == ["TERMINATED"] * 4 + ["INTERNAL_ERROR", "TERMINATED"], states
    assert "not run again" in each_run["iterations"][4]["state"]["state_message"]
    assert [p["path"] for k, p in world.runner.executions if k == "item"] == paths
    assert run["state"]["result_state"] == "FAILED"
