"""Jobs benchmark: each figure beside its baseline, measured in one run on one warm cluster.

- for_each of 40 no-op notebook iterations: the overhead per iteration, beside
  Prefect's and Airflow's per-task overhead on the same 40 no-op tasks, each installed in an
  environment of its own (`uv venv` under $KILN_BENCH_ENVS, ~/.cache/kiln-bench by default);
  targets <= 0.25x Prefect and <= 0.05x Airflow. Where a baseline cannot be installed or run
  here, the output says so and why. Overhead per item = (time for 40 - time for 1) / 39, so
  fixed costs (a process start, a flow's setup) are not counted against either side. A second
  row gives the engine's own share: the same for_each with tasks that do nothing, in-process
  (a notebook iteration also runs its notebook as a command in a reused execution context on
  the cluster).
- 64 iterations that each sleep 1 s, at concurrency 16: the for_each task's wall time beside
  the ideal 4 s; target <= 1.5x.
- run-now -> first task RUNNING on a warm cluster, beside a warm `spark.range(1).count()`
  through the Command Execution API; target <= 5x.

Run with `.venv/bin/python -m bench.jobs`. Every figure is a median.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import httpx

from bench.execution import Api, _start_cluster
from bench.foundation import _start_kiln, _stop

ROUNDS = int(os.environ.get("KILN_BENCH_JOBS_ROUNDS", "3"))
ENVS = Path(os.environ.get("KILN_BENCH_ENVS", Path.home() / ".cache" / "kiln-bench"))
UV = str(Path(sys.executable).with_name("uv"))
# Pins that keep each baseline installable as released (Prefect 3.8 breaks on FastAPI 0.120+
# and SQLAlchemy 2.1).
BASELINES = {
    "prefect": ["prefect>=3,<4", "fastapi<0.120", "sqlalchemy<2.1"],
    "airflow": ["apache-airflow==2.10.5"],
}

_PREFECT = """
import json, os, sys, time
from prefect import flow, task

@task
def noop(i):
    return i

@flow
def items(n):
    return [noop(i) for i in range(n)]

items(2)
one, forty = [], []
for _ in range(int(sys.argv[1])):
    t = time.perf_counter(); items(1); one.append(time.perf_counter() - t)
    t = time.perf_counter(); items(40); forty.append(time.perf_counter() - t)
print(json.dumps({"one": one, "forty": forty}))
"""

_AIRFLOW_DAG = """
from datetime import datetime
from airflow import DAG
from airflow.operators.python import PythonOperator

def noop():
    return None

for n in (1, 40):
    with DAG(f"items_{n}", start_date=datetime(2024, 1, 1), schedule=None, catchup=False) as dag:
        for i in range(n):
            PythonOperator(task_id=f"noop_{i}", python_callable=noop)
    globals()[f"dag_{n}"] = dag
"""


def _row(name: str, value: str, baseline: str, verdict: str) -> None:
    print(f"{name:<44} {value:>12}   {baseline:<52} {verdict}", flush=True)


def _env(name: str) -> tuple[Path | None, str]:
    """The baseline's own environment (created on first use); or None and why not."""
    python = ENVS / name / "bin" / "python"
    if python.exists():
        return python, ""
    ENVS.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run(
            [UV, "venv", str(ENVS / name), "--python", "3.11"],
            check=True,
            capture_output=True,
            timeout=600,
        )
        subprocess.run(
            [UV, "pip", "install", "--python", str(python), *BASELINES[name]],
            check=True,
            capture_output=True,
            timeout=1800,
        )
    except (subprocess.SubprocessError, OSError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        reason = detail.decode(errors="replace").strip().splitlines()[-1:] or [str(exc)]
        return None, f"cannot install {' '.join(BASELINES[name])}: {reason[0]}"
    return python, ""


def prefect_overhead() -> tuple[float | None, str]:
    """Prefect's overhead per no-op task (seconds), or None and why."""
    python, why = _env("prefect")
    if python is None:
        return None, why
    with tempfile.TemporaryDirectory() as home:
        env = {
            **os.environ,
            "PREFECT_HOME": home,
            "PREFECT_LOGGING_LEVEL": "CRITICAL",
            # The ephemeral API server starts slowly on a busy 2-core machine.
            "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "300",
        }
        env.pop("PREFECT_API_URL", None)
        try:
            proc = subprocess.run(
                [str(python), "-c", _PREFECT, str(ROUNDS)],
                capture_output=True,
                text=True,
                timeout=1800,
                env=env,
            )
        except subprocess.TimeoutExpired:
            return None, "Prefect did not finish within 30 minutes"
    if proc.returncode != 0:
        return None, f"Prefect failed: {proc.stderr.strip().splitlines()[-1:]}"
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    return (statistics.median(data["forty"]) - statistics.median(data["one"])) / 39, ""


def airflow_overhead() -> tuple[float | None, str]:
    """Airflow's overhead per no-op task with `airflow dags test` (its fastest way to run a
    DAG, in one process: a baseline that favours Airflow), or None and why."""
    python, why = _env("airflow")
    if python is None:
        return None, why
    airflow = str(python.with_name("airflow"))
    with tempfile.TemporaryDirectory() as home:
        dags = Path(home) / "dags"
        dags.mkdir()
        (dags / "items.py").write_text(_AIRFLOW_DAG)
        env = {
            **os.environ,
            "AIRFLOW_HOME": home,
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "false",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "ERROR",
        }
        try:
            subprocess.run(
                [airflow, "db", "migrate"], env=env, capture_output=True, check=True, timeout=900
            )
            times: dict[int, list[float]] = {1: [], 40: []}
            for _ in range(ROUNDS):
                for n in (1, 40):
                    t = time.perf_counter()
                    subprocess.run(
                        [airflow, "dags", "test", f"items_{n}", "2024-01-02"],
                        env=env,
                        capture_output=True,
                        check=True,
                        timeout=1800,
                    )
                    times[n].append(time.perf_counter() - t)
        except (subprocess.SubprocessError, OSError) as exc:
            detail = getattr(exc, "stderr", b"") or b""
            lines = detail.decode(errors="replace").strip().splitlines() if detail else [str(exc)]
            return None, f"Airflow failed: {lines[-1] if lines else exc}"
    return (statistics.median(times[40]) - statistics.median(times[1])) / 39, ""


class _NoopRunner:
    """A runner whose task does nothing: what is left is the engine's own work."""

    def resumable(self, checkpoint: Any) -> bool:
        return False

    async def run(self, ctx: Any) -> Any:
        from kiln.jobs.runners import TaskOutcome
        from kiln.jobs.states import ResultState

        await ctx.mark_started({})
        return TaskOutcome(ResultState.SUCCESS)


class _NoCluster:
    async def check(self, *args: Any) -> None:
        return None

    async def acquire(self, request: Any, report: Any) -> str:
        return "in-process"

    async def release(self, request: Any) -> None:
        return None

    async def end_run(self, session: Any, cluster_ids: Any) -> None:
        return None


async def _engine_only(rounds: int) -> float:
    """The engine's overhead per for_each iteration with tasks that do nothing, in-process on
    a SQLite store (the same work per task as with a cluster, minus the cluster)."""
    from kiln.identity import Principal
    from kiln.identity.users import create_user
    from kiln.jobs import Jobs as JobsService
    from kiln.jobs import jobs_service, runs_service
    from kiln.settings import KilnSettings, to_async_url
    from kiln.store import Database, upgrade

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'kiln.db'}"
        upgrade(url)
        db = Database(to_async_url(url))
        async with db.session() as session:
            user = await create_user(session, "bench@example.com")
        owner = Principal(user.id, user.user_name, True, "")
        service = JobsService(
            KilnSettings(data_dir=Path(tmp)),
            db,
            None,
            runners={"notebook_task": _NoopRunner()},  # type: ignore[dict-item]
            clusters=_NoCluster(),  # type: ignore[arg-type]
        )
        await service.engine.start()

        async def run(items: int) -> float:
            task = {
                "task_key": "item",
                "existing_cluster_id": "in-process",
                "notebook_task": {"notebook_path": "/noop"},
            }
            body = {
                "tasks": [
                    {
                        "task_key": "each",
                        "for_each_task": {"inputs": json.dumps(list(range(items))), "task": task},
                    }
                ]
            }
            t = time.perf_counter()
            created = await runs_service.submit_run(service, owner, body)
            await service.engine.wait_run(created.run_id)
            return time.perf_counter() - t

        del jobs_service
        try:
            await run(4)
            one = [await run(1) for _ in range(rounds * 3)]
            forty = [await run(40) for _ in range(rounds * 3)]
        finally:
            await service.stop()
            await db.dispose()
    return (statistics.median(forty) - statistics.median(one)) / 39


class Jobs:
    """A keep-alive client of Kiln's Jobs API."""

    def __init__(self, client: httpx.Client, cluster_id: str) -> None:
        self.client = client
        self.cluster_id = cluster_id

    def notebook(self, path: str, code: str) -> None:
        self.client.post("/api/2.0/workspace/mkdirs", json={"path": path.rsplit("/", 1)[0]})
        source = "# Databricks notebook source\n" + code + "\n"
        r = self.client.post(
            "/api/2.0/workspace/import",
            json={
                "path": path,
                "format": "SOURCE",
                "language": "PYTHON",
                "content": base64.b64encode(source.encode()).decode(),
                "overwrite": True,
            },
        )
        r.raise_for_status()

    def wait(self, run_id: int) -> dict[str, Any]:
        while True:
            run: dict[str, Any] = self.client.get(
                "/api/2.2/jobs/runs/get", params={"run_id": run_id}
            ).json()
            if run["state"]["life_cycle_state"] in ("TERMINATED", "SKIPPED", "INTERNAL_ERROR"):
                if run["state"].get("result_state") != "SUCCESS":
                    errors = [
                        stat
                        for task in run.get("tasks", [])
                        for stat in (task.get("for_each_task") or {})
                        .get("stats", {})
                        .get("error_message_stats", [])
                    ]
                    raise RuntimeError(f"run {run_id} ended {run['state']}: {errors}")
                return run
            time.sleep(0.1)

    def for_each(self, path: str, items: int, concurrency: int) -> float:
        """Seconds the for_each task took to run its iterations."""
        task = {
            "task_key": "each",
            "for_each_task": {
                "inputs": json.dumps(list(range(items))),
                "concurrency": concurrency,
                "task": {
                    "task_key": "item",
                    "existing_cluster_id": self.cluster_id,
                    "notebook_task": {"notebook_path": path},
                },
            },
        }
        r = self.client.post(
            "/api/2.2/jobs/runs/submit", json={"run_name": "bench", "tasks": [task]}
        )
        r.raise_for_status()
        run = self.wait(r.json()["run_id"])
        each = run["tasks"][0]
        return (each["end_time"] - each["start_time"]) / 1000

    def first_running(self, job_id: int) -> float:
        """run-now until its first task is RUNNING (the task run's own times)."""
        r = self.client.post("/api/2.2/jobs/run-now", json={"job_id": job_id})
        r.raise_for_status()
        run = self.wait(r.json()["run_id"])
        task = run["tasks"][0]
        return (task["start_time"] + task["setup_duration"] - run["start_time"]) / 1000


def main() -> None:
    """The three figures, each beside its baseline."""
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        proc, url, _ = _start_kiln(data_dir)
        try:
            token = (data_dir / "admin-token").read_text().strip()
            client = httpx.Client(
                base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=300
            )
            cid, _ = _start_cluster(client, cores)
            jobs = Jobs(client, cid)
            jobs.notebook("/Shared/bench/noop", "pass")
            jobs.notebook("/Shared/bench/sleep", "import time\ntime.sleep(1)")
            r = client.post(
                "/api/2.2/jobs/create",
                json={
                    "name": "first-running",
                    "max_concurrent_runs": 10,
                    "tasks": [
                        {
                            "task_key": "noop",
                            "existing_cluster_id": cid,
                            "notebook_task": {"notebook_path": "/Shared/bench/noop"},
                        }
                    ],
                },
            )
            r.raise_for_status()
            job_id = r.json()["job_id"]
            jobs.for_each("/Shared/bench/noop", 4, 1)  # warm: spares, caches
            one, forty, wide, running = [], [], [], []
            for _ in range(ROUNDS):
                one.append(jobs.for_each("/Shared/bench/noop", 1, 1))
                forty.append(jobs.for_each("/Shared/bench/noop", 40, 1))
                wide.append(jobs.for_each("/Shared/bench/sleep", 64, 16))
                running += [jobs.first_running(job_id) for _ in range(3)]
            api = Api(client, cid)
            context = api.create()
            for _ in range(3):
                api.run(context, "spark.range(1).count()")
            spark = []
            for _ in range(10 * ROUNDS):
                t = time.perf_counter()
                api.run(context, "spark.range(1).count()")
                spark.append(time.perf_counter() - t)
            api.destroy(context)
            client.post("/api/2.1/clusters/permanent-delete", json={"cluster_id": cid})
        finally:
            _stop(proc)
    engine = asyncio.run(_engine_only(ROUNDS))
    prefect, prefect_why = prefect_overhead()
    airflow, airflow_why = airflow_overhead()
    ms = 1000.0
    print(f"{'figure':<44} {'value':>12}   {'baseline / target':<52} verdict")
    per_item = (statistics.median(forty) - statistics.median(one)) / 39
    for name, base, why, target in (
        ("Prefect", prefect, prefect_why, 0.25),
        ("Airflow", airflow, airflow_why, 0.05),
    ):
        label = f"for_each overhead per iteration vs {name}"
        if base is not None and base <= 0:
            # 40 tasks took no longer than 1: the machine's noise swamped the baseline.
            base, why = None, f"{name}'s 40-task run was not slower than its 1-task run: rerun"
        if base is None:
            _row(label, f"{per_item * ms:.0f} ms", f"{name}: not measured here", why)
            continue
        ratio = per_item / base
        _row(
            label,
            f"{per_item * ms:.0f} ms",
            f"{name} per no-op task {base * ms:.1f} ms",
            f"{ratio:.2f}x (target <= {target}x) {'PASS' if ratio <= target else 'FAIL'}",
        )
    for name, base, target in (("Prefect", prefect, 0.25), ("Airflow", airflow, 0.05)):
        if base is None or base <= 0:
            continue
        ratio = engine / base
        _row(
            f"engine alone per iteration vs {name}",
            f"{engine * ms:.1f} ms",
            f"{name} per no-op task {base * ms:.1f} ms",
            f"{ratio:.2f}x (target <= {target}x) {'PASS' if ratio <= target else 'FAIL'}",
        )
    wall = statistics.median(wide)
    _row(
        "64 x sleep(1 s) at concurrency 16",
        f"{wall:.2f} s",
        "ideal 4 s",
        f"{wall / 4:.2f}x (target <= 1.5x) {'PASS' if wall / 4 <= 1.5 else 'FAIL'}",
    )
    first, count = statistics.median(running), statistics.median(spark)
    _row(
        "run-now -> first task RUNNING",
        f"{first * ms:.0f} ms",
        f"warm spark.range(1).count() {count * ms:.0f} ms",
        f"{first / count:.2f}x (target <= 5x) {'PASS' if first / count <= 5 else 'FAIL'}",
    )
    print(
        textwrap.fill(
            f"(machine: {cores} cores; Kiln rounds: {ROUNDS}; baselines in {ENVS})", width=100
        )
    )


if __name__ == "__main__":
    main()
