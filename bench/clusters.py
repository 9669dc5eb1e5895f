"""Clusters benchmark: each figure beside its baseline, measured side by side in one run.

- Cold single-node start: `clusters/create` → RUNNING → first Spark job answered, against a
  bare `SparkSession.builder.master("local[*]").getOrCreate()` plus one count in a fresh
  process; target ≤ 1.5x.
- Resident memory of an idle single-node driver (the runtime and its JVM), beside the bare
  session's; target ≤ 700 MB.

Run with `.venv/bin/python -m bench.clusters`. Runs alternate (bare, Kiln, bare, Kiln...) so
both see the same machine; every figure is a median.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

from bench.foundation import _start_kiln, _stop, admin_client, row
from kiln.compute.driver_client import DriverClient

PY = sys.executable
RUNS = int(os.environ.get("KILN_BENCH_CLUSTER_RUNS", "3"))
IDLE_SECONDS = 5.0
RUNTIME = "16.4.x-scala2.13"

_BARE = """
import os, sys, time, psutil
from pyspark.sql import SparkSession
spark = SparkSession.builder.master("local[*]").getOrCreate()
spark.range(1000).count()
print("answered", time.time(), flush=True)
time.sleep(float(sys.argv[1]))
me = psutil.Process()
rss = me.memory_info().rss + sum(c.memory_info().rss for c in me.children(recursive=True))
print("rss", rss, flush=True)
spark.stop()
"""


def bare_session() -> tuple[float, int]:
    """Seconds from process start to the first count answered, and the idle RSS (bytes)."""
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"}
    started = time.time()
    proc = subprocess.Popen(
        [PY, "-c", _BARE, str(IDLE_SECONDS)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        text=True,
    )
    answered, rss = 0.0, 0
    assert proc.stdout is not None
    for line in proc.stdout:
        word, _, value = line.strip().partition(" ")
        if word == "answered":
            answered = float(value) - started
        elif word == "rss":
            rss = int(value)
    proc.wait()
    return answered, rss


def _cluster_rss(home: Path) -> int:
    total = 0
    for proc in psutil.process_iter():
        try:
            if proc.environ().get("KILN_CLUSTER_HOME") == str(home):
                total += proc.memory_info().rss
        except psutil.Error:
            continue
    return total


def kiln_cold_start(client: httpx.Client, data_dir: Path, node_type: str) -> tuple[float, int]:
    """Seconds from create to the first Spark job answered, and the idle driver's RSS."""
    started = time.perf_counter()
    r = client.post(
        "/api/2.1/clusters/create",
        json={
            "cluster_name": "bench",
            "spark_version": RUNTIME,
            "node_type_id": node_type,
            "num_workers": 0,
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
        time.sleep(0.05)
    home = data_dir.resolve() / "clusters" / cid
    port = json.loads((home / "driver-state.json").read_text())["control_port"]
    driver = DriverClient.from_files(f"http://127.0.0.1:{port}", str(home / "secrets.json"))
    asyncio.run(driver.smoke_job(1, 0))
    elapsed = time.perf_counter() - started
    time.sleep(IDLE_SECONDS)
    rss = _cluster_rss(home)
    client.post("/api/2.1/clusters/permanent-delete", json={"cluster_id": cid}).raise_for_status()
    while _cluster_rss(home):
        time.sleep(0.2)
    return elapsed, rss


def main() -> None:
    """Cold start and idle memory of a single-node cluster, beside bare pyspark."""
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        proc, url, _ = _start_kiln(data_dir)
        try:
            client = admin_client(data_dir, url, timeout=60)
            types = client.get("/api/2.1/clusters/list-node-types").json()["node_types"]
            cores = os.cpu_count() or 1
            node = max((t for t in types if t["num_cores"] <= cores), key=lambda t: t["num_cores"])[
                "node_type_id"
            ]
            bare_times, bare_rss, kiln_times, kiln_rss = [], [], [], []
            for _ in range(RUNS):
                seconds, rss = bare_session()
                bare_times.append(seconds)
                bare_rss.append(rss)
                seconds, rss = kiln_cold_start(client, data_dir, node)
                kiln_times.append(seconds)
                kiln_rss.append(rss)
        finally:
            _stop(proc)
    print(f"{'figure':<44} {'value':>12}   {'baseline / target':<40} verdict")
    kiln_s, bare_s = statistics.median(kiln_times), statistics.median(bare_times)
    ratio = kiln_s / bare_s
    row(
        f"cold single-node start to first job ({node})",
        f"{kiln_s:.2f} s",
        f"bare local[*] session + count {bare_s:.2f} s",
        f"{ratio:.2f}x (target <= 1.5x) {'PASS' if ratio <= 1.5 else 'FAIL'}",
    )
    mb = statistics.median(kiln_rss) / 2**20
    row(
        "idle single-node driver RSS (runtime + JVM)",
        f"{mb:.0f} MB",
        f"bare session {statistics.median(bare_rss) / 2**20:.0f} MB; target <= 700 MB",
        "PASS" if mb <= 700 else "FAIL",
    )
    print(
        f"runs: kiln {[round(t, 1) for t in kiln_times]} bare {[round(t, 1) for t in bare_times]}"
    )


if __name__ == "__main__":
    main()
