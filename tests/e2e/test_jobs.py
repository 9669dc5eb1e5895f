"""The Jobs API with databricks-sdk against a live server, with tasks that need no cluster
(condition_task, run_job_task, for_each_task): create/get/list/update/reset/delete, run-now
and submit to their end, repair, cancel, queueing, idempotency, paging, a seconds-resolution
schedule, webhooks, Jobs API 2.0 shapes, every bad input as a 400 naming its field with
nothing created, and a kill -9 of the server in the middle of a run.

Then, on a real single-node cluster: the issue's acceptance DAG (notebook -> for_each over 12
at concurrency 4 -> condition -> wheel task), a submitted run on a job cluster from an
instance pool, repair and cancel of cluster tasks, and a kill -9 with 8 iterations running.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import signal
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from compute_support import (
    RUNTIME,
    SINGLE_NODE_CONF,
    SINGLE_NODE_TAGS,
    SMALL,
    compute_env,
    running_compute_server,
    unique,
)
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import InvalidParameterValue, NotFound, PermissionDenied
from databricks.sdk.service import jobs as j
from databricks.sdk.service.compute import ClusterSpec, Library, State
from databricks.sdk.service.workspace import ImportFormat, Language

from support import Server, assert_error, start_server, stop_server_process

WAIT = timedelta(minutes=3)
CLUSTER_WAIT = timedelta(minutes=10)


def cond(key: str, left: str = "1", right: str = "1", op: str = "EQUAL_TO", **extra: Any) -> j.Task:
    return j.Task(
        task_key=key,
        condition_task=j.ConditionTask(op=j.ConditionTaskOp(op), left=left, right=right),
        **extra,
    )


def dep(key: str, outcome: str | None = None) -> j.TaskDependency:
    return j.TaskDependency(task_key=key, outcome=outcome)


def by_key(run: j.Run) -> dict[str, j.RunTask]:
    return {t.task_key: t for t in run.tasks or []}


def result(task: j.RunTask) -> str | None:
    assert task.state is not None
    return task.state.result_state.value if task.state.result_state else None


def wait_for(check: Callable[[], Any], what: str, limit: float = 120) -> Any:
    deadline = time.monotonic() + limit
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def child_job(sdk: WorkspaceClient) -> int:
    created = sdk.jobs.create(
        name="child",
        max_concurrent_runs=50,
        parameters=[j.JobParameterDefinition(name="x", default="none")],
        tasks=[cond("check", left="{{job.parameters.x}}", right="none", op="NOT_EQUAL")],
    )
    assert created.job_id is not None
    return created.job_id


def test_create_run_now_and_wait_on_a_dag(sdk: WorkspaceClient, child_job: int) -> None:
    created = sdk.jobs.create(
        name="dag",
        parameters=[j.JobParameterDefinition(name="n", default="5")],
        tasks=[
            cond("big", left="{{job.parameters.n}}", right="3", op="GREATER_THAN"),
            j.Task(
                task_key="fan",
                depends_on=[dep("big", "true")],
                for_each_task=j.ForEachTask(
                    inputs='["a", "b", "c", "d", "e", "f"]',
                    concurrency=3,
                    task=j.Task(
                        task_key="call",
                        run_job_task=j.RunJobTask(
                            job_id=child_job, job_parameters={"x": "{{input}}"}
                        ),
                    ),
                ),
            ),
            cond("small", depends_on=[dep("big", "false")]),
            cond(
                "done", left="{{tasks.big.result_state}}", right="success", depends_on=[dep("fan")]
            ),
        ],
    )
    assert created.job_id is not None
    job = sdk.jobs.get(created.job_id)
    assert job.settings is not None and job.settings.name == "dag"
    assert [t.task_key for t in job.settings.tasks or []] == ["big", "fan", "small", "done"]
    run = sdk.jobs.run_now_and_wait(created.job_id, timeout=WAIT)
    assert run.state is not None and run.state.result_state == j.RunResultState.SUCCESS
    assert run.job_id == created.job_id and run.trigger == j.TriggerType.ONE_TIME
    tasks = by_key(run)
    assert {k: result(t) for k, t in tasks.items()} == {
        "big": "SUCCESS",
        "fan": "SUCCESS",
        "small": "EXCLUDED",
        "done": "SUCCESS",
    }
    assert tasks["big"].condition_task is not None and tasks["big"].condition_task.outcome == "true"
    fan = tasks["fan"]
    assert fan.for_each_task is not None and fan.for_each_task.stats is not None
    stats = fan.for_each_task.stats.task_run_stats
    assert stats is not None and stats.succeeded_iterations == 6 and stats.total_iterations == 6
    assert fan.run_id is not None
    iterations = sdk.jobs.get_run(fan.run_id).iterations or []
    assert len(iterations) == 6 and len({i.run_id for i in iterations}) == 6
    children = set()
    for iteration in iterations:
        assert iteration.run_id is not None and result(iteration) == "SUCCESS"
        out = sdk.jobs.get_run_output(iteration.run_id)
        assert out.run_job_output is not None and out.run_job_output.run_id is not None
        children.add(out.run_job_output.run_id)
    child_runs = [sdk.jobs.get_run(c) for c in children]
    assert {p.value for r in child_runs for p in r.job_parameters or [] if p.value} == set("abcdef")
    assert {r.trigger for r in child_runs} == {j.TriggerType.RUN_JOB_TASK}


def test_submit_and_wait(sdk: WorkspaceClient) -> None:
    run = sdk.jobs.submit_and_wait(
        run_name="once",
        tasks=[
            j.SubmitTask(
                task_key="a",
                condition_task=j.ConditionTask(
                    op=j.ConditionTaskOp.EQUAL_TO, left="{{job.run_id}}", right="x"
                ),
            ),
            j.SubmitTask(
                task_key="b",
                depends_on=[dep("a", "false")],
                condition_task=j.ConditionTask(op=j.ConditionTaskOp.LESS_THAN, left="1", right="2"),
            ),
        ],
        timeout=WAIT,
    )
    assert run.run_type == j.RunType.SUBMIT_RUN and run.job_id is None
    assert {k: result(t) for k, t in by_key(run).items()} == {"a": "SUCCESS", "b": "SUCCESS"}
    assert run.state is not None and run.state.result_state == j.RunResultState.SUCCESS


def test_repair_reruns_only_the_failed_task_and_what_depends_on_it(sdk: WorkspaceClient) -> None:
    created = sdk.jobs.create(
        name="repairable",
        parameters=[j.JobParameterDefinition(name="n", default="not a number")],
        tasks=[
            cond("independent"),
            cond("numeric", left="{{job.parameters.n}}", right="3", op="GREATER_THAN"),
            cond("after", depends_on=[dep("numeric")]),
        ],
    )
    assert created.job_id is not None
    run = sdk.jobs.run_now_and_wait(created.job_id, timeout=WAIT)
    assert run.state is not None and run.state.result_state == j.RunResultState.FAILED
    before = by_key(run)
    assert {k: result(t) for k, t in before.items()} == {
        "independent": "SUCCESS",
        "numeric": "FAILED",
        "after": "UPSTREAM_FAILED",
    }
    assert run.run_id is not None and before["numeric"].run_id is not None
    failed = sdk.jobs.get_run_output(before["numeric"].run_id)
    assert failed.error is not None and "not a number" in failed.error
    repaired = sdk.jobs.repair_run_and_wait(
        run.run_id, rerun_tasks=["numeric"], job_parameters={"n": "7"}, timeout=WAIT
    )
    after = by_key(repaired)
    assert {k: result(t) for k, t in after.items()} == {
        "independent": "SUCCESS",
        "numeric": "SUCCESS",
        "after": "SUCCESS",
    }
    assert repaired.state is not None and repaired.state.result_state == j.RunResultState.SUCCESS
    # The task that succeeded kept its run; the repaired ones have new ones.
    assert after["independent"].run_id == before["independent"].run_id
    assert after["numeric"].run_id != before["numeric"].run_id
    history = sdk.jobs.get_run(run.run_id, include_history=True).repair_history or []
    assert [h.type for h in history] == [
        j.RepairHistoryItemType.ORIGINAL,
        j.RepairHistoryItemType.REPAIR,
    ]
    with pytest.raises(InvalidParameterValue, match="latest_repair_id"):
        sdk.jobs.repair_run(run.run_id, rerun_tasks=["numeric"])


def test_queue_cancel_and_cancel_all(sdk: WorkspaceClient) -> None:
    # max_concurrent_runs 0 with a queue: every run waits until the limit grows.
    created = sdk.jobs.create(
        name="queued", max_concurrent_runs=0, queue=j.QueueSettings(enabled=True), tasks=[cond("a")]
    )
    assert created.job_id is not None
    first = sdk.jobs.run_now(created.job_id).run_id
    second = sdk.jobs.run_now(created.job_id).run_id
    third = sdk.jobs.run_now(created.job_id).run_id
    assert first and second and third
    queued = sdk.jobs.get_run(first)
    assert queued.state is not None and queued.state.life_cycle_state == j.RunLifeCycleState.QUEUED
    assert queued.status is not None and queued.status.queue_details is not None
    canceled = sdk.jobs.cancel_run_and_wait(first, timeout=WAIT)
    assert canceled.state is not None and canceled.state.result_state == j.RunResultState.CANCELED
    assert canceled.state.user_cancelled_or_timedout
    # Raising the limit starts the queued runs.
    sdk.jobs.update(created.job_id, new_settings=j.JobSettings(max_concurrent_runs=1))
    done = sdk.jobs.wait_get_run_job_terminated_or_skipped(second, timeout=WAIT)
    assert done.state is not None and done.state.result_state == j.RunResultState.SUCCESS
    sdk.jobs.wait_get_run_job_terminated_or_skipped(third, timeout=WAIT)
    # Without a queue, a run over the limit is skipped.
    sdk.jobs.reset(
        created.job_id,
        new_settings=j.JobSettings(name="skipping", max_concurrent_runs=0, tasks=[cond("a")]),
    )
    skipped = sdk.jobs.run_now_and_wait(created.job_id, timeout=WAIT)
    assert skipped.state is not None
    assert skipped.state.life_cycle_state == j.RunLifeCycleState.SKIPPED
    assert skipped.state.result_state == j.RunResultState.MAXIMUM_CONCURRENT_RUNS_REACHED
    sdk.jobs.update(
        created.job_id,
        new_settings=j.JobSettings(max_concurrent_runs=0, queue=j.QueueSettings(enabled=True)),
    )
    waiting = [sdk.jobs.run_now(created.job_id).run_id for _ in range(3)]
    sdk.jobs.cancel_all_runs(job_id=created.job_id)
    for run_id in waiting:
        assert run_id is not None
        state = sdk.jobs.wait_get_run_job_terminated_or_skipped(run_id, timeout=WAIT).state
        assert state is not None and state.result_state == j.RunResultState.CANCELED


def test_idempotency_token(sdk: WorkspaceClient, child_job: int) -> None:
    first = sdk.jobs.run_now(
        child_job, idempotency_token="daily-2024-01-01", job_parameters={"x": "1"}
    )
    again = sdk.jobs.run_now(
        child_job, idempotency_token="daily-2024-01-01", job_parameters={"x": "1"}
    )
    assert first.run_id == again.run_id
    with pytest.raises(InvalidParameterValue, match="idempotency_token"):
        sdk.jobs.run_now(child_job, idempotency_token="t" * 65)
    assert first.run_id is not None
    sdk.jobs.wait_get_run_job_terminated_or_skipped(first.run_id, timeout=WAIT)


def test_list_paging_update_reset_delete(sdk: WorkspaceClient) -> None:
    prefix = f"paged-{os.getpid()}-{time.monotonic_ns()}"
    ids = []
    for i in range(7):
        created = sdk.jobs.create(name=f"{prefix}-{i}", tasks=[cond("a")])
        assert created.job_id is not None
        ids.append(created.job_id)
    # The SDK pages with next_page_token; limit 2 makes it follow four pages.
    listed = [job.job_id for job in sdk.jobs.list(limit=2) if job.job_id in ids]
    assert listed == ids[::-1]
    named = list(sdk.jobs.list(name=f"{prefix}-3".upper(), expand_tasks=True))
    assert [job.job_id for job in named] == [ids[3]]
    assert named[0].settings is not None and named[0].settings.tasks
    sdk.jobs.update(
        ids[0],
        new_settings=j.JobSettings(name="renamed", tasks=[cond("b")]),
        fields_to_remove=["tasks/a"],
    )
    job = sdk.jobs.get(ids[0])
    assert job.settings is not None and job.settings.name == "renamed"
    assert [t.task_key for t in job.settings.tasks or []] == ["b"]
    sdk.jobs.reset(ids[0], new_settings=j.JobSettings(name="reset", tasks=[cond("c"), cond("d")]))
    job = sdk.jobs.get(ids[0])
    assert job.settings is not None and [t.task_key for t in job.settings.tasks or []] == ["c", "d"]
    # Runs list pages too.
    runs = [sdk.jobs.run_now(ids[1]).run_id for _ in range(3)]
    for run_id in runs:
        assert run_id is not None
        sdk.jobs.wait_get_run_job_terminated_or_skipped(run_id, timeout=WAIT)
    listed_runs = [r.run_id for r in sdk.jobs.list_runs(job_id=ids[1], limit=1)]
    assert listed_runs == runs[::-1]
    assert list(sdk.jobs.list_runs(job_id=ids[1], active_only=True)) == []
    sdk.jobs.delete_run(runs[0])
    with pytest.raises(NotFound):
        sdk.jobs.get_run(runs[0])
    for job_id in ids:
        sdk.jobs.delete(job_id)
    with pytest.raises(NotFound):
        sdk.jobs.get(ids[0])


def test_scheduled_job_fires_on_a_seconds_cron(sdk: WorkspaceClient) -> None:
    created = sdk.jobs.create(
        name="every-2s",
        max_concurrent_runs=5,
        schedule=j.CronSchedule(
            quartz_cron_expression="*/2 * * * * ?", timezone_id="Europe/Berlin"
        ),
        tasks=[cond("tick", left="{{job.trigger.type}}", right="PERIODIC")],
    )
    assert created.job_id is not None
    job_id = created.job_id

    def periodic() -> list[j.BaseRun]:
        runs = [r for r in sdk.jobs.list_runs(job_id=job_id, completed_only=True)]
        return runs if len(runs) >= 2 else []

    runs = wait_for(periodic, "two scheduled runs")
    assert {r.trigger for r in runs} == {j.TriggerType.PERIODIC}
    assert all(r.state and r.state.result_state == j.RunResultState.SUCCESS for r in runs)
    assert len({r.start_time for r in runs}) == len(runs)
    sdk.jobs.update(
        job_id,
        new_settings=j.JobSettings(
            schedule=j.CronSchedule(
                quartz_cron_expression="*/2 * * * * ?",
                timezone_id="UTC",
                pause_status=j.PauseStatus.PAUSED,
            )
        ),
    )
    count = len(list(sdk.jobs.list_runs(job_id=job_id)))
    time.sleep(5)  # a paused schedule fires nothing (wall-clock ticks must pass to show it)
    assert len(list(sdk.jobs.list_runs(job_id=job_id))) == count
    sdk.jobs.delete(job_id)


class _Hooks(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        self.received.append({"path": self.path, **body})
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        return


@pytest.fixture
def hook_server() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []
    handler = type("Hooks", (_Hooks,), {"received": received})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", received
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(10)


def test_webhooks(sdk: WorkspaceClient, hook_server: tuple[str, list[dict[str, Any]]]) -> None:
    base, received = hook_server
    hooks = j.WebhookNotifications(
        on_start=[j.Webhook(id=f"{base}/start")],
        on_success=[j.Webhook(id=f"{base}/success")],
        on_failure=[j.Webhook(id=f"{base}/failure")],
    )
    good = sdk.jobs.create(name="hooked", webhook_notifications=hooks, tasks=[cond("a")])
    bad = sdk.jobs.create(
        name="hooked-bad",
        webhook_notifications=hooks,
        tasks=[cond("a", left="x", op="GREATER_THAN")],
    )
    assert good.job_id is not None and bad.job_id is not None
    sdk.jobs.run_now_and_wait(good.job_id, timeout=WAIT)
    sdk.jobs.run_now_and_wait(bad.job_id, timeout=WAIT)
    wait_for(lambda: len(received) >= 4, "four webhook calls", 30)
    paths = sorted(r["path"] for r in received)
    assert paths == ["/failure", "/start", "/start", "/success"]
    failure = next(r for r in received if r["path"] == "/failure")
    assert failure["event_type"] == "jobs.on_failure"
    assert failure["job"]["job_id"] == bad.job_id and failure["job"]["name"] == "hooked-bad"


def test_jobs_api_2_0_shapes(admin: httpx.Client) -> None:
    # A 2.0 single-task job (fields at the top) and job ids as strings, as the legacy CLI sends.
    r = admin.post(
        "/api/2.0/jobs/create",
        headers={"content-type": "text/json"},
        content=json.dumps(
            {
                "name": "legacy",
                "new_cluster": {"spark_version": "16.4.x-scala2.13", "node_type_id": "unknown"},
                "notebook_task": {"notebook_path": "/Shared/x"},
            }
        ),
    )
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")
    assert "new_cluster" in r.json()["message"]
    r = admin.post(
        "/api/2.0/jobs/create",
        json={
            "name": "legacy-multi",
            "tasks": [
                {"task_key": "a", "condition_task": {"op": "EQUAL_TO", "left": "1", "right": "1"}}
            ],
        },
    )
    assert r.status_code == 200, r.text
    job_id = r.json()["job_id"]
    r = admin.get("/api/2.1/jobs/get", params={"job_id": str(job_id)})
    assert r.status_code == 200 and r.json()["settings"]["format"] == "MULTI_TASK"
    r = admin.post("/api/2.0/jobs/run-now", json={"job_id": str(job_id)})
    assert r.status_code == 200, r.text
    run_id = r.json()["run_id"]
    assert r.json()["number_in_job"] == run_id

    def ended() -> dict[str, Any] | None:
        run = admin.get("/api/2.0/jobs/runs/get", params={"run_id": str(run_id)}).json()
        return run if run["state"]["life_cycle_state"] == "TERMINATED" else None

    assert wait_for(ended, "the run")["state"]["result_state"] == "SUCCESS"
    r = admin.get("/api/2.0/jobs/list")
    assert r.status_code == 200 and "jobs" in r.json()
    assert_error(
        admin.get("/api/2.0/jobs/get", params={"job_id": "abc"}), 400, "INVALID_PARAMETER_VALUE"
    )
    assert_error(
        admin.get("/api/2.0/jobs/get", params={"job_id": "1"}), 400, "INVALID_PARAMETER_VALUE"
    )
    assert_error(
        admin.get("/api/2.2/jobs/runs/get", params={"run_id": "1"}), 400, "INVALID_PARAMETER_VALUE"
    )


def _job(tasks: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"name": "bad", "tasks": tasks, **extra}


def _c(key: str, **extra: Any) -> dict[str, Any]:
    return {
        "task_key": key,
        "condition_task": {"op": "EQUAL_TO", "left": "1", "right": "1"},
        **extra,
    }


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            _job(
                [_c("a", depends_on=[{"task_key": "b"}]), _c("b", depends_on=[{"task_key": "a"}])]
            ),
            "cycle",
        ),
        (_job([_c("a", depends_on=[{"task_key": "ghost"}])]), "tasks[0].depends_on[0].task_key"),
        (_job([_c("a"), _c("a")]), "tasks[1].task_key"),
        (
            _job(
                [
                    {
                        "task_key": "f",
                        "for_each_task": {
                            "inputs": "[1]",
                            "task": {
                                "task_key": "g",
                                "for_each_task": {"inputs": "[1]", "task": _c("h")},
                            },
                        },
                    }
                ]
            ),
            "tasks[0].for_each_task.task.for_each_task",
        ),
        (
            _job([{"task_key": "f", "for_each_task": {"inputs": "[1]"}}]),
            "tasks[0].for_each_task.task",
        ),
        (_job([_c(f"t{i}") for i in range(1001)]), "at most 1000 tasks"),
        (
            _job(
                [
                    {
                        "task_key": "f",
                        "for_each_task": {"inputs": "[1]", "concurrency": 101, "task": _c("g")},
                    }
                ]
            ),
            "concurrency",
        ),
        (
            _job([_c("a")], schedule={"quartz_cron_expression": "0 0 25 * * ?"}),
            "schedule.quartz_cron_expression",
        ),
        (
            _job(
                [_c("a")],
                schedule={"quartz_cron_expression": "0 0 1 * * ?", "timezone_id": "Nowhere/Town"},
            ),
            "schedule.timezone_id",
        ),
        (
            _job(
                [
                    {
                        "task_key": "n",
                        "notebook_task": {"notebook_path": "/x"},
                        "existing_cluster_id": "0000-000000-nothere",
                    }
                ]
            ),
            "tasks[0].existing_cluster_id",
        ),
        (
            _job(
                [
                    {
                        "task_key": "n",
                        "notebook_task": {"notebook_path": "/x"},
                        "new_cluster": {
                            "spark_version": "16.4.x-scala2.13",
                            "instance_pool_id": "no-such-pool",
                            "num_workers": 0,
                        },
                    }
                ]
            ),
            "tasks[0].new_cluster.instance_pool_id",
        ),
        (_job([{"task_key": "r", "run_job_task": {"job_id": 1}}]), "tasks[0].run_job_task.job_id"),
        (_job([_c("a")], max_concurrent_runs=1001), "max_concurrent_runs"),
    ],
)
def test_bad_jobs_are_400s_naming_the_field(
    admin: httpx.Client, body: dict[str, Any], field: str
) -> None:
    before = len(admin.get("/api/2.2/jobs/list", params={"limit": 100}).json().get("jobs", []))
    r = admin.post("/api/2.2/jobs/create", json=body)
    assert field in assert_error(r, 400, "INVALID_PARAMETER_VALUE")["message"]
    assert (
        len(admin.get("/api/2.2/jobs/list", params={"limit": 100}).json().get("jobs", [])) == before
    )


def test_bad_runs_are_400s(admin: httpx.Client, sdk: WorkspaceClient, child_job: int) -> None:
    before = len(admin.get("/api/2.2/jobs/runs/list", params={"limit": 25}).json().get("runs", []))
    r = admin.post(
        "/api/2.2/jobs/run-now", json={"job_id": child_job, "idempotency_token": "x" * 65}
    )
    assert "idempotency_token" in assert_error(r, 400, "INVALID_PARAMETER_VALUE")["message"]
    r = admin.post(
        "/api/2.2/jobs/run-now", json={"job_id": child_job, "job_parameters": {"nope": "1"}}
    )
    assert "nope" in assert_error(r, 400, "INVALID_PARAMETER_VALUE")["message"]
    r = admin.post("/api/2.2/jobs/runs/submit", json={"run_name": "x", "tasks": [_c("a"), _c("a")]})
    assert "tasks[1].task_key" in assert_error(r, 400, "INVALID_PARAMETER_VALUE")["message"]
    r = admin.post("/api/2.2/jobs/runs/submit", json={"run_name": "x"})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")
    assert (
        len(admin.get("/api/2.2/jobs/runs/list", params={"limit": 25}).json().get("runs", []))
        == before
    )
    assert_error(admin.post("/api/2.2/jobs/run-now", json={}), 400, "INVALID_PARAMETER_VALUE")
    assert_error(
        admin.post("/api/2.2/jobs/runs/repair", json={"run_id": 1}), 400, "INVALID_PARAMETER_VALUE"
    )
    assert_error(
        admin.post("/api/2.2/jobs/runs/cancel", json={"run_id": "nope"}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    assert_error(
        admin.get("/api/2.2/jobs/runs/list", params={"limit": 26}), 400, "INVALID_PARAMETER_VALUE"
    )
    assert_error(
        admin.get("/api/2.2/jobs/list", params={"page_token": "!!"}), 400, "INVALID_PARAMETER_VALUE"
    )


def test_other_users_cannot_manage_a_job(
    sdk: WorkspaceClient, server: Server, make_user: Callable[..., tuple[str, str]], child_job: int
) -> None:
    _, token = make_user("jobs")
    other = WorkspaceClient(host=server.url, token=token, auth_type="pat")
    # Reading is open; running, changing and deleting are the owner's (and admins').
    assert other.jobs.get(child_job).job_id == child_job
    with pytest.raises(PermissionDenied):
        other.jobs.run_now(child_job)
    with pytest.raises(PermissionDenied):
        other.jobs.delete(child_job)
    mine = other.jobs.create(name="mine", tasks=[cond("a")])
    assert mine.job_id is not None
    assert other.jobs.run_now_and_wait(mine.job_id, timeout=WAIT).state is not None


# -- kill -9 ------------------------------------------------------------------------------------


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[Server]:
    srv = start_server(tmp_path / "data")
    try:
        yield srv
    finally:
        stop_server_process(srv.process)


def test_kill_9_mid_run_loses_and_repeats_nothing(own_server: Server, tmp_path: Path) -> None:
    w = WorkspaceClient(host=own_server.url, token=own_server.token, auth_type="pat")
    # The child job queues every run (limit 0), so 8 iterations sit RUNNING, each waiting on
    # its child run, when the server is killed.
    child = w.jobs.create(
        name="child",
        max_concurrent_runs=0,
        queue=j.QueueSettings(enabled=True),
        parameters=[j.JobParameterDefinition(name="i", default="")],
        tasks=[cond("work", left="{{job.parameters.i}}", right="", op="NOT_EQUAL")],
    ).job_id
    assert child is not None
    parent = w.jobs.create(
        name="parent",
        tasks=[
            cond("go"),
            j.Task(
                task_key="fan",
                depends_on=[dep("go", "true")],
                for_each_task=j.ForEachTask(
                    inputs=json.dumps([str(i) for i in range(10)]),
                    concurrency=8,
                    task=j.Task(
                        task_key="call",
                        run_job_task=j.RunJobTask(job_id=child, job_parameters={"i": "{{input}}"}),
                    ),
                ),
            ),
            cond("after", depends_on=[dep("fan")]),
        ],
    ).job_id
    assert parent is not None
    run_id = w.jobs.run_now(parent).run_id
    assert run_id is not None

    def eight_running() -> bool:
        fan = by_key(w.jobs.get_run(run_id))["fan"]
        assert fan.run_id is not None
        iterations = w.jobs.get_run(fan.run_id).iterations or []
        running = [
            i
            for i in iterations
            if i.state and i.state.life_cycle_state == j.RunLifeCycleState.RUNNING
        ]
        return len(running) == 8

    wait_for(eight_running, "8 running iterations")
    os.kill(own_server.process.pid, signal.SIGKILL)
    own_server.process.wait(30)
    restarted = start_server(own_server.data_dir)
    own_server.process = restarted.process
    w = WorkspaceClient(host=restarted.url, token=restarted.token, auth_type="pat")
    run = w.jobs.get_run(run_id)
    assert run.state is not None and run.state.life_cycle_state == j.RunLifeCycleState.RUNNING
    # Let the children run: the resumed iterations wait for the same child runs.
    w.jobs.update(child, new_settings=j.JobSettings(max_concurrent_runs=10))
    run = w.jobs.wait_get_run_job_terminated_or_skipped(run_id, timeout=WAIT)
    assert run.state is not None and run.state.result_state == j.RunResultState.SUCCESS
    assert {k: result(t) for k, t in by_key(run).items()} == {
        "go": "SUCCESS",
        "fan": "SUCCESS",
        "after": "SUCCESS",
    }
    fan = by_key(run)["fan"]
    assert fan.run_id is not None
    iterations = w.jobs.get_run(fan.run_id).iterations or []
    assert len(iterations) == 10 and all(result(i) == "SUCCESS" for i in iterations)
    child_runs = list(w.jobs.list_runs(job_id=child, limit=25))
    # One child run per iteration: none lost, none started twice.
    assert len(child_runs) == 10
    values = sorted(
        p.value
        for r in child_runs
        for p in w.jobs.get_run(r.run_id).job_parameters or []
        if r.run_id
    )  # type: ignore[arg-type]
    assert values == sorted(str(i) for i in range(10))
    assert all(r.state and r.state.result_state == j.RunResultState.SUCCESS for r in child_runs)


# -- tasks on a real cluster --------------------------------------------------------------------
#
# One server of the module's own (compute knobs shrunk for a 2-core machine) and one
# single-node cluster for all of them; a Spark start is the slow part.


def build_wheel(name: str = "kilnjobwheel") -> bytes:
    """A pure-Python wheel with an entry point `report` (built by hand: no network)."""
    code = (
        "import sys\n\n"
        "def report():\n"
        "    print('wheel args', ' '.join(sys.argv[1:]))\n"
        "    if '--fail' in sys.argv:\n"
        "        raise SystemExit(3)\n"
    )
    info = f"{name}-0.1.dist-info"
    files = {
        f"{name}/__init__.py": code,
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n",
        f"{info}/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: kiln-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
        f"{info}/entry_points.txt": f"[console_scripts]\nreport = {name}:report\n",
    }
    buffer = io.BytesIO()
    record = []
    with zipfile.ZipFile(buffer, "w") as archive:
        for path, text in files.items():
            data = text.encode()
            archive.writestr(path, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            record.append(f"{path},sha256={digest.decode()},{len(data)}")
        record.append(f"{info}/RECORD,,")
        archive.writestr(f"{info}/RECORD", "\n".join(record) + "\n")
    return buffer.getvalue()


def put_notebook(w: WorkspaceClient, path: str, *cells: str) -> None:
    text = "# Databricks notebook source\n" + "\n\n# COMMAND ----------\n\n".join(cells) + "\n"
    w.workspace.mkdirs(path.rsplit("/", 1)[0])
    w.workspace.import_(
        path,
        content=base64.b64encode(text.encode()).decode(),
        format=ImportFormat.SOURCE,
        language=Language.PYTHON,
        overwrite=True,
    )


def put_dbfs(w: WorkspaceClient, path: str, data: bytes) -> None:
    w.dbfs.put(path, contents=base64.b64encode(data).decode(), overwrite=True)


@pytest.fixture(scope="module")
def compute_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_compute_server(tmp_path_factory.mktemp("jobs") / "data", compute_env()) as srv:
        yield srv


@pytest.fixture(scope="module")
def cluster(w: WorkspaceClient) -> str:
    details = w.clusters.create_and_wait(
        cluster_name=unique("jobs"),
        spark_version=RUNTIME,
        node_type_id=SMALL,
        num_workers=0,
        spark_conf=SINGLE_NODE_CONF,
        custom_tags=SINGLE_NODE_TAGS,
        timeout=CLUSTER_WAIT,
    )
    assert details.cluster_id is not None
    return details.cluster_id


@pytest.fixture(scope="module")
def folder(w: WorkspaceClient) -> str:
    path = f"/Shared/{unique('jobs')}"
    w.workspace.mkdirs(path)
    return path


@pytest.mark.slow
def test_acceptance_dag_on_a_cluster(w: WorkspaceClient, cluster: str, folder: str) -> None:
    """notebook -> for_each over 12 inputs at concurrency 4 -> condition -> wheel task."""
    put_notebook(
        w,
        f"{folder}/produce",
        'dbutils.widgets.text("count", "1")',
        'n = int(dbutils.widgets.get("count"))\n'
        'dbutils.jobs.taskValues.set("items", [f"item-{i}" for i in range(n)])\n'
        'dbutils.jobs.taskValues.set("count", n)\n'
        'print("produced", n)',
        "dbutils.notebook.exit(str(n))",
    )
    put_notebook(
        w,
        f"{folder}/work",
        'dbutils.widgets.text("item", "")',
        'count = dbutils.jobs.taskValues.get("produce", "count", debugValue=0)\n'
        "dbutils.notebook.exit(f\"{dbutils.widgets.get('item').upper()}/{count}\")",
    )
    wheel = f"dbfs:/{unique('wheels')}/kilnjobwheel-0.1-py3-none-any.whl"
    put_dbfs(w, wheel, build_wheel())
    created = w.jobs.create(
        name="acceptance",
        tasks=[
            j.Task(
                task_key="produce",
                existing_cluster_id=cluster,
                notebook_task=j.NotebookTask(
                    notebook_path=f"{folder}/produce", base_parameters={"count": "12"}
                ),
            ),
            j.Task(
                task_key="fan",
                depends_on=[dep("produce")],
                for_each_task=j.ForEachTask(
                    inputs="{{tasks.produce.values.items}}",
                    concurrency=4,
                    task=j.Task(
                        task_key="work",
                        existing_cluster_id=cluster,
                        notebook_task=j.NotebookTask(
                            notebook_path=f"{folder}/work", base_parameters={"item": "{{input}}"}
                        ),
                    ),
                ),
            ),
            cond(
                "twelve", left="{{tasks.produce.values.count}}", right="12", depends_on=[dep("fan")]
            ),
            j.Task(
                task_key="wheel",
                depends_on=[dep("twelve", "true")],
                existing_cluster_id=cluster,
                libraries=[Library(whl=wheel)],
                python_wheel_task=j.PythonWheelTask(
                    package_name="kilnjobwheel",
                    entry_point="report",
                    parameters=["--count", "{{tasks.produce.values.count}}"],
                ),
            ),
        ],
    )
    assert created.job_id is not None
    run = w.jobs.run_now_and_wait(created.job_id, timeout=CLUSTER_WAIT)
    tasks = by_key(run)
    assert {k: result(t) for k, t in tasks.items()} == {
        "produce": "SUCCESS",
        "fan": "SUCCESS",
        "twelve": "SUCCESS",
        "wheel": "SUCCESS",
    }, [t.state for t in tasks.values()]
    assert run.state is not None and run.state.result_state == j.RunResultState.SUCCESS
    produce = w.jobs.get_run_output(tasks["produce"].run_id)  # type: ignore[arg-type]
    assert produce.notebook_output is not None and produce.notebook_output.result == "12"
    fan = tasks["fan"]
    assert fan.run_id is not None and fan.for_each_task is not None
    stats = fan.for_each_task.stats
    assert stats is not None and stats.task_run_stats is not None
    assert stats.task_run_stats.succeeded_iterations == 12
    iterations = w.jobs.get_run(fan.run_id).iterations or []
    assert len(iterations) == 12
    exits = sorted(
        (w.jobs.get_run_output(i.run_id).notebook_output or j.NotebookOutput()).result or ""  # type: ignore[arg-type]
        for i in iterations
    )
    assert exits == sorted(f"ITEM-{i}/12" for i in range(12))
    assert (
        tasks["twelve"].condition_task is not None
        and tasks["twelve"].condition_task.outcome == "true"
    )
    wheel_out = w.jobs.get_run_output(tasks["wheel"].run_id)  # type: ignore[arg-type]
    assert wheel_out.logs is not None and "wheel args --count 12" in wheel_out.logs
    exported = w.jobs.export_run(tasks["produce"].run_id)  # type: ignore[arg-type]
    assert exported.views and exported.views[0].content and "produced" in exported.views[0].content


def test_iterations_reuse_a_context_made_fresh(
    w: WorkspaceClient, cluster: str, folder: str
) -> None:
    """Sequential iterations run in one recycled Python (the same pid), and each finds it as a
    new context: no globals, environment variables, working directory or widgets of the one
    before."""
    put_notebook(
        w,
        f"{folder}/fresh",
        "import os\n"
        'assert "leaked" not in globals(), "a global of the previous run leaked"\n'
        'assert "KILN_LEAK" not in os.environ, "an environment variable leaked"\n'
        'assert "kiln-leak-" not in os.getcwd(), "the working directory leaked"\n'
        "try:\n"
        '    dbutils.widgets.get("stale")\n'
        "except Exception:\n"
        "    pass\n"
        "else:\n"
        '    raise AssertionError("a widget leaked")\n'
        'dbutils.widgets.text("stale", "x")',
        'import tempfile\nleaked = 1\nos.environ["KILN_LEAK"] = "1"\n'
        'os.chdir(tempfile.mkdtemp(prefix="kiln-leak-"))\n'
        "dbutils.notebook.exit(str(os.getpid()))",
    )
    each = j.SubmitTask(
        task_key="each",
        for_each_task=j.ForEachTask(
            inputs="[1, 2, 3]",
            concurrency=1,
            task=j.Task(
                task_key="one",
                existing_cluster_id=cluster,
                notebook_task=j.NotebookTask(notebook_path=f"{folder}/fresh"),
            ),
        ),
    )
    run = w.jobs.submit_and_wait(run_name="fresh", tasks=[each], timeout=WAIT)
    assert run.state is not None and run.state.result_state == j.RunResultState.SUCCESS, run.state
    fan = by_key(run)["each"]
    assert fan.run_id is not None
    iterations = w.jobs.get_run(fan.run_id).iterations or []
    pids = {
        (w.jobs.get_run_output(i.run_id).notebook_output or j.NotebookOutput()).result  # type: ignore[arg-type]
        for i in iterations
    }
    assert len(iterations) == 3 and len(pids) == 1, pids


@pytest.mark.slow
def test_submit_on_a_job_cluster_from_an_instance_pool(w: WorkspaceClient, folder: str) -> None:
    pool_id = w.instance_pools.create(
        instance_pool_name=unique("jobs-pool"), node_type_id=SMALL, max_capacity=1
    ).instance_pool_id
    script = f"dbfs:/{unique('scripts')}/count.py"
    put_dbfs(w, script, b"import sys\nprint('count', spark.range(int(sys.argv[1])).count())\n")
    try:
        run = w.jobs.submit_and_wait(
            run_name="pooled",
            tasks=[
                j.SubmitTask(
                    task_key="count",
                    new_cluster=ClusterSpec(
                        spark_version=RUNTIME,
                        instance_pool_id=pool_id,
                        num_workers=0,
                        spark_conf=SINGLE_NODE_CONF,
                        custom_tags=SINGLE_NODE_TAGS,
                    ),
                    spark_python_task=j.SparkPythonTask(python_file=script, parameters=["7"]),
                )
            ],
            timeout=CLUSTER_WAIT,
        )
        task = by_key(run)["count"]
        assert result(task) == "SUCCESS", task.state
        out = w.jobs.get_run_output(task.run_id)  # type: ignore[arg-type]
        assert out.logs is not None and "count 7" in out.logs
        assert task.cluster_instance is not None and task.cluster_instance.cluster_id
        job_cluster = task.cluster_instance.cluster_id
        details = w.clusters.get(job_cluster)
        assert details.cluster_source is not None and details.cluster_source.value == "JOB"
        assert details.instance_pool_id == pool_id
        # The task's own cluster ends with the task.
        wait_for(
            lambda: w.clusters.get(job_cluster).state == State.TERMINATED,
            "the job cluster to end",
            300,
        )
        ended = w.clusters.get(job_cluster)
        assert ended.termination_reason is not None
        assert ended.termination_reason.code is not None
        assert ended.termination_reason.code.value == "JOB_FINISHED"
    finally:
        assert pool_id is not None
        w.instance_pools.delete(pool_id)


@pytest.mark.slow
def test_repair_and_cancel_on_a_cluster(w: WorkspaceClient, cluster: str, folder: str) -> None:
    flag = f"/{unique('flags')}/ready"
    script = f"dbfs:/{unique('scripts')}/needs_flag.py"
    put_dbfs(
        w,
        script,
        (
            f"import os\nassert os.path.exists('/dbfs{flag}'), 'no flag yet'\nprint('flag found')\n"
        ).encode(),
    )
    put_notebook(w, f"{folder}/ok", "dbutils.notebook.exit('ok')")
    tasks = [
        j.SubmitTask(
            task_key="independent",
            existing_cluster_id=cluster,
            notebook_task=j.NotebookTask(notebook_path=f"{folder}/ok"),
        ),
        j.SubmitTask(
            task_key="needs_flag",
            existing_cluster_id=cluster,
            spark_python_task=j.SparkPythonTask(python_file=script),
        ),
        j.SubmitTask(
            task_key="after",
            depends_on=[dep("needs_flag")],
            existing_cluster_id=cluster,
            notebook_task=j.NotebookTask(notebook_path=f"{folder}/ok"),
        ),
    ]
    run = w.jobs.submit_and_wait(run_name="repair", tasks=tasks, timeout=CLUSTER_WAIT)
    before = by_key(run)
    assert {k: result(t) for k, t in before.items()} == {
        "independent": "SUCCESS",
        "needs_flag": "FAILED",
        "after": "UPSTREAM_FAILED",
    }
    failed = w.jobs.get_run_output(before["needs_flag"].run_id)  # type: ignore[arg-type]
    assert failed.error is not None and "no flag yet" in failed.error
    assert failed.error_trace
    put_dbfs(w, flag, b"1")
    assert run.run_id is not None
    repaired = w.jobs.repair_run_and_wait(
        run.run_id, rerun_tasks=["needs_flag"], timeout=CLUSTER_WAIT
    )
    after = by_key(repaired)
    assert {k: result(t) for k, t in after.items()} == {
        "independent": "SUCCESS",
        "needs_flag": "SUCCESS",
        "after": "SUCCESS",
    }
    assert after["independent"].run_id == before["independent"].run_id
    # Cancel a notebook while it runs.
    put_notebook(w, f"{folder}/forever", "import time\nfor _ in range(600):\n    time.sleep(0.5)")
    waiting = w.jobs.submit(
        run_name="cancel",
        tasks=[
            j.SubmitTask(
                task_key="forever",
                existing_cluster_id=cluster,
                notebook_task=j.NotebookTask(notebook_path=f"{folder}/forever"),
            )
        ],
    ).run_id
    assert waiting is not None

    def running() -> bool:
        task = by_key(w.jobs.get_run(waiting))["forever"]
        return bool(task.state and task.state.life_cycle_state == j.RunLifeCycleState.RUNNING)

    wait_for(running, "the notebook to run", 300)
    canceled = w.jobs.cancel_run_and_wait(waiting, timeout=CLUSTER_WAIT)
    assert canceled.state is not None and canceled.state.result_state == j.RunResultState.CANCELED
    assert result(by_key(canceled)["forever"]) == "CANCELED"


@pytest.mark.slow
def test_kill_9_with_8_running_iterations_on_a_cluster(
    w: WorkspaceClient, compute_server: Server, cluster: str
) -> None:
    markers = f"/{unique('markers')}"
    script = f"dbfs:/{unique('scripts')}/mark.py"
    put_dbfs(
        w,
        script,
        (
            "import os, sys, time\n"
            "item = sys.argv[1]\n"
            "time.sleep(float(sys.argv[2]))\n"
            f"os.makedirs('/dbfs{markers}', exist_ok=True)\n"
            f"open(f'/dbfs{markers}/{{item}}-{{time.time_ns()}}', 'w').write(item)\n"
            "print('marked', item)\n"
        ).encode(),
    )
    run_id = w.jobs.submit(
        run_name="crash",
        tasks=[
            j.SubmitTask(
                task_key="fan",
                for_each_task=j.ForEachTask(
                    inputs=json.dumps([f"i{n}" for n in range(10)]),
                    concurrency=8,
                    task=j.Task(
                        task_key="mark",
                        existing_cluster_id=cluster,
                        spark_python_task=j.SparkPythonTask(
                            python_file=script, parameters=["{{input}}", "20"]
                        ),
                    ),
                ),
            )
        ],
    ).run_id
    assert run_id is not None

    def eight_running() -> bool:
        fan = by_key(w.jobs.get_run(run_id))["fan"]
        iterations = w.jobs.get_run(fan.run_id).iterations or []  # type: ignore[arg-type]
        return (
            sum(
                1
                for i in iterations
                if i.state and i.state.life_cycle_state == j.RunLifeCycleState.RUNNING
            )
            == 8
        )

    wait_for(eight_running, "8 running iterations", 600)
    os.kill(compute_server.process.pid, signal.SIGKILL)
    compute_server.process.wait(30)
    port = int(compute_server.url.rsplit(":", 1)[1])
    restarted = start_server(compute_server.data_dir, port=port, env=compute_env())
    compute_server.process = restarted.process
    run = w.jobs.wait_get_run_job_terminated_or_skipped(run_id, timeout=CLUSTER_WAIT)
    assert run.state is not None and run.state.result_state == j.RunResultState.SUCCESS, run.state
    fan = by_key(run)["fan"]
    iterations = w.jobs.get_run(fan.run_id).iterations or []  # type: ignore[arg-type]
    assert len(iterations) == 10 and all(result(i) == "SUCCESS" for i in iterations)
    # Every input ran exactly once: the 8 running ones were found again, not run again.
    written = [f.path.rsplit("/", 1)[1].split("-")[0] for f in w.dbfs.list(markers) if f.path]
    assert sorted(written) == sorted(f"i{n}" for n in range(10))
