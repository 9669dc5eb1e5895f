"""Instance pools benchmark: a warm-pool attach beside the cold start of the same cluster,
both measured in the same run.

- Warm-pool attach: `clusters/create` naming a pool with a warm instance → RUNNING → first
  Spark job answered, against the cold start of the same single-node cluster without a pool;
  target ≤ 0.05x.
- Resident memory of one idle warm instance (its driver runtime and JVM); target ≤ 700 MB.

Run with `.venv/bin/python -m bench.pools`. Runs alternate (cold, warm, cold, warm...) so both
see the same machine; every figure is a median.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from bench.clusters import RUNTIME, _cluster_rss, kiln_cold_start
from bench.foundation import _start_kiln, _stop, admin_client, row
from kiln.compute.driver_client import DriverClient

RUNS = int(os.environ.get("KILN_BENCH_POOL_RUNS", "3"))
IDLE_SECONDS = 3.0


def _wait(check: object, what: str, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _idle(client: httpx.Client, pool_id: str) -> int:
    body = client.get("/api/2.0/instance-pools/get", params={"instance_pool_id": pool_id}).json()
    return int(body["stats"].get("idle_count", 0))


def _warm_folders(data_dir: Path) -> list[Path]:
    return sorted((data_dir.resolve() / "clusters").glob("pi-*"))


def warm_attach(client: httpx.Client, data_dir: Path, pool_id: str, node: str) -> tuple[float, int]:
    """Seconds from create (on a pool with a warm instance) to the first job answered, and the
    warm instance's resident memory measured while it was idle."""
    _wait(lambda: _idle(client, pool_id) >= 1, "a warm instance")
    (home,) = [p for p in _warm_folders(data_dir) if (p / "driver-state.json").is_file()][:1]
    time.sleep(IDLE_SECONDS)
    rss = _cluster_rss(home)
    started = time.perf_counter()
    r = client.post(
        "/api/2.1/clusters/create",
        json={
            "cluster_name": "bench-pool",
            "spark_version": RUNTIME,
            "node_type_id": node,
            "num_workers": 0,
            "instance_pool_id": pool_id,
        },
    )
    r.raise_for_status()
    cid = r.json()["cluster_id"]
    while True:
        state = client.get("/api/2.1/clusters/get", params={"cluster_id": cid}).json()["state"]
        if state == "RUNNING":
            break
        if state in ("TERMINATED", "ERROR"):
            raise RuntimeError(f"cluster {cid} failed to start")
        time.sleep(0.01)
    port = json.loads((home / "driver-state.json").read_text())["control_port"]
    driver = DriverClient.from_files(f"http://127.0.0.1:{port}", str(home / "secrets.json"))
    asyncio.run(driver.smoke_job(1, 0))
    elapsed = time.perf_counter() - started
    client.post("/api/2.1/clusters/permanent-delete", json={"cluster_id": cid}).raise_for_status()
    _wait(lambda: not _cluster_rss(home), "the used instance to be retired")
    return elapsed, rss


def main() -> None:
    """Warm-pool attach beside a cold start, and a warm instance's idle memory."""
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        proc, url, _ = _start_kiln(data_dir)
        try:
            client = admin_client(data_dir, url, timeout=60)
            types = client.get("/api/2.1/clusters/list-node-types").json()["node_types"]
            node = types[0]["node_type_id"]
            r = client.post(
                "/api/2.0/instance-pools/create",
                json={
                    "instance_pool_name": "bench",
                    "node_type_id": node,
                    "min_idle_instances": 1,
                    "max_capacity": 2,
                },
            )
            r.raise_for_status()
            pool_id = r.json()["instance_pool_id"]
            cold_times, warm_times, warm_rss = [], [], []
            for _ in range(RUNS):
                _wait(lambda: _idle(client, pool_id) >= 1, "a warm instance")
                seconds, _rss = kiln_cold_start(client, data_dir, node)
                cold_times.append(seconds)
                seconds, rss = warm_attach(client, data_dir, pool_id, node)
                warm_times.append(seconds)
                warm_rss.append(rss)
            client.post("/api/2.0/instance-pools/delete", json={"instance_pool_id": pool_id})
        finally:
            _stop(proc)
    print(f"{'figure':<44} {'value':>12}   {'baseline / target':<40} verdict")
    warm_s, cold_s = statistics.median(warm_times), statistics.median(cold_times)
    ratio = warm_s / cold_s
    row(
        f"warm-pool attach to first job ({node})",
        f"{warm_s:.3f} s",
        f"cold start of the same cluster {cold_s:.2f} s",
        f"{ratio:.3f}x (target <= 0.05x) {'PASS' if ratio <= 0.05 else 'FAIL'}",
    )
    mb = statistics.median(warm_rss) / 2**20
    row(
        "idle warm pool instance RSS (runtime + JVM)",
        f"{mb:.0f} MB",
        "target <= 700 MB",
        "PASS" if mb <= 700 else "FAIL",
    )
    print(
        f"runs: warm {[round(t, 3) for t in warm_times]} cold {[round(t, 1) for t in cold_times]}"
    )


if __name__ == "__main__":
    main()
