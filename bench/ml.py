"""ML benchmark: each figure beside its baseline, measured side by side in one run.

- log_batch of 1000 metrics through the unchanged `mlflow` client: Kiln (tracking URI
  `databricks`) against a stock `mlflow server` on SQLite started here; target <= 2x.
- /invocations at concurrency 10 of one scikit-learn model: a Kiln serving endpoint against
  `mlflow models serve` of the same model files; targets rps >= 1x and p50 <= 1.2x.

Run with `.venv/bin/python -m bench.ml`. Rounds alternate (baseline, Kiln, baseline, Kiln...) so
both see the same machine; every figure is a median.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import httpx

from bench.foundation import _free_port, _start_kiln, _stop, _wait_health, row

PY = sys.executable
ROUNDS = int(os.environ.get("KILN_BENCH_ML_ROUNDS", "5"))
REQUESTS = int(os.environ.get("KILN_BENCH_ML_REQUESTS", "400"))
CONCURRENCY = 10
MODEL = "main.default.bench_model"
PAYLOAD = {"dataframe_split": {"columns": ["a", "b", "c", "d"], "data": [[0.1, 0.2, 0.3, 0.4]]}}


def _start(
    args: list[str], health: str, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        args,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
    )
    _wait_health(health.rsplit("/", 1)[0], proc, "/" + health.rsplit("/", 1)[1])
    return proc


def _log_batch_seconds(client: Any, run_id: str) -> float:
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    metrics = [Metric(f"m{i}", float(i), now, 0) for i in range(1000)]
    started = time.perf_counter()
    client.log_batch(run_id, metrics=metrics)
    return time.perf_counter() - started


def bench_log_batch(kiln_url: str, token: str, stock_url: str) -> tuple[list[float], list[float]]:
    """Seconds per 1000-metric log_batch: (Kiln, stock mlflow server)."""
    os.environ["DATABRICKS_HOST"] = kiln_url
    os.environ["DATABRICKS_TOKEN"] = token
    from mlflow import MlflowClient

    kiln = MlflowClient(tracking_uri="databricks")
    stock = MlflowClient(tracking_uri=stock_url)
    kiln_run = kiln.create_run(kiln.create_experiment("/Users/admin@kiln.local/bench")).info.run_id
    stock_run = stock.create_run(stock.create_experiment("bench")).info.run_id
    # One warm-up each (first requests pay connection set-up and imports).
    _log_batch_seconds(kiln, kiln_run)
    _log_batch_seconds(stock, stock_run)
    kiln_s, stock_s = [], []
    for _ in range(ROUNDS):
        stock_s.append(_log_batch_seconds(stock, stock_run))
        kiln_s.append(_log_batch_seconds(kiln, kiln_run))
    return kiln_s, stock_s


def register_model(kiln_url: str, token: str, model_dir: Path) -> str:
    """Log, save and register a small scikit-learn model; the registered version."""
    import mlflow
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    os.environ["DATABRICKS_HOST"] = kiln_url
    os.environ["DATABRICKS_TOKEN"] = token
    rng = np.random.default_rng(0)
    x = rng.random((200, 4))
    model = LogisticRegression().fit(x, (x.sum(axis=1) > 2).astype(int))
    mlflow.sklearn.save_model(model, str(model_dir), input_example=x[:1])
    mlflow.set_tracking_uri("databricks")
    mlflow.set_experiment("/Users/admin@kiln.local/bench-serving")
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(model, name="model", input_example=x[:1])
    return str(mlflow.register_model(info.model_uri, MODEL).version)


async def _load(url: str, headers: dict[str, str]) -> tuple[float, float]:
    """(requests per second, p50 latency in ms) of REQUESTS requests at CONCURRENCY."""
    latencies: list[float] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(REQUESTS):
        queue.put_nowait(i)
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(headers=headers, limits=limits, timeout=60) as client:

        async def worker() -> None:
            while not queue.empty():
                queue.get_nowait()
                t0 = time.perf_counter()
                r = await client.post(url, json=PAYLOAD)
                latencies.append(time.perf_counter() - t0)
                r.raise_for_status()

        for _ in range(CONCURRENCY):  # warm-up: one request per connection
            await client.post(url, json=PAYLOAD)
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        elapsed = time.perf_counter() - started
    return REQUESTS / elapsed, statistics.median(latencies) * 1000


def main() -> None:
    """log_batch and serving throughput/latency beside stock MLflow."""
    warnings.simplefilter("ignore")
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        kiln_proc, kiln_url, _ = _start_kiln(data_dir)
        stock_port = _free_port()
        stock_url = f"http://127.0.0.1:{stock_port}"
        procs = [kiln_proc]
        try:
            token = (data_dir / "admin-token").read_text().strip()
            procs.append(
                _start(
                    [
                        PY,
                        "-m",
                        "mlflow",
                        "server",
                        "--host",
                        "127.0.0.1",
                        "--port",
                        str(stock_port),
                        "--backend-store-uri",
                        f"sqlite:///{tmp}/stock.db",
                        "--default-artifact-root",
                        f"{tmp}/stock-artifacts",
                    ],
                    f"{stock_url}/health",
                )
            )
            kiln_batch, stock_batch = bench_log_batch(kiln_url, token, stock_url)

            model_dir = Path(tmp) / "model"
            version = register_model(kiln_url, token, model_dir)
            serve_port = _free_port()
            procs.append(
                _start(
                    [
                        PY,
                        "-m",
                        "mlflow",
                        "models",
                        "serve",
                        "-m",
                        str(model_dir),
                        "--env-manager",
                        "local",
                        "--host",
                        "127.0.0.1",
                        "--port",
                        str(serve_port),
                    ],
                    f"http://127.0.0.1:{serve_port}/ping",
                    # `mlflow models serve` runs `uvicorn` from PATH.
                    env={"PATH": f"{Path(PY).parent}:{os.environ.get('PATH', '')}"},
                )
            )
            auth = {"Authorization": f"Bearer {token}"}
            with httpx.Client(base_url=kiln_url, headers=auth, timeout=60) as client:
                entity = {"entity_name": MODEL, "entity_version": version}
                r = client.post(
                    "/api/2.0/serving-endpoints",
                    json={"name": "bench", "config": {"served_entities": [entity]}},
                )
                r.raise_for_status()
                while (
                    client.get("/api/2.0/serving-endpoints/bench").json()["state"]["config_update"]
                    == "IN_PROGRESS"
                ):
                    time.sleep(0.5)
            kiln_rps, kiln_p50, base_rps, base_p50 = [], [], [], []
            for _ in range(ROUNDS):
                rps, p50 = asyncio.run(_load(f"http://127.0.0.1:{serve_port}/invocations", {}))
                base_rps.append(rps)
                base_p50.append(p50)
                rps, p50 = asyncio.run(
                    _load(f"{kiln_url}/serving-endpoints/bench/invocations", auth)
                )
                kiln_rps.append(rps)
                kiln_p50.append(p50)
        finally:
            for proc in reversed(procs):
                _stop(proc)

    print(f"{'figure':<44} {'value':>12}   {'baseline / target':<44} verdict")
    k, s = statistics.median(kiln_batch), statistics.median(stock_batch)
    row(
        "log_batch of 1000 metrics",
        f"{k * 1000:.1f} ms",
        f"stock mlflow server (SQLite) {s * 1000:.1f} ms",
        f"{k / s:.2f}x (target <= 2x) {'PASS' if k / s <= 2 else 'FAIL'}",
        widths=(44, 12, 44),
    )
    kr, br = statistics.median(kiln_rps), statistics.median(base_rps)
    row(
        "/invocations rps at concurrency 10",
        f"{kr:.0f} rps",
        f"mlflow models serve {br:.0f} rps",
        f"{kr / br:.2f}x (target >= 1x) {'PASS' if kr >= br else 'FAIL'}",
        widths=(44, 12, 44),
    )
    kp, bp = statistics.median(kiln_p50), statistics.median(base_p50)
    row(
        "/invocations p50 latency at concurrency 10",
        f"{kp:.1f} ms",
        f"mlflow models serve {bp:.1f} ms",
        f"{kp / bp:.2f}x (target <= 1.2x) {'PASS' if kp <= 1.2 * bp else 'FAIL'}",
        widths=(44, 12, 44),
    )
    print(
        f"log_batch ms: kiln {[round(x * 1000, 1) for x in kiln_batch]} "
        f"stock {[round(x * 1000, 1) for x in stock_batch]}"
    )
    print(f"rps: kiln {[round(x) for x in kiln_rps]} base {[round(x) for x in base_rps]}")


if __name__ == "__main__":
    main()
