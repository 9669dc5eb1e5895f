"""Execution contexts benchmark: each figure beside its baseline, measured in one run.

- Warm round trip of `1+1` through the REST API (`commands/execute`, then `commands/status`
  until Finished, over keep-alive) vs a Jupyter kernel's execute round trip (jupyter_client:
  execute_request → execute_reply and the kernel idle again); target ≤ 3x.
- `spark.range(1).collect()` through the API vs the same call made directly in a driver
  process (a local SparkSession of the same size, timed in-process); target ≤ 1.5x.
- New context on a running cluster → first result (`contexts/create` → Running → `1+1`
  Finished); target ≤ 1 s, beside a new Jupyter kernel's start → first result.

Run with `.venv/bin/python -m bench.execution`. Baseline and Kiln batches alternate so both see
the same (shared, noisy) machine; every figure is a median.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from bench.foundation import _start_kiln, _stop, admin_client, row

PY = sys.executable
RUNTIME = "16.4.x-scala2.13"
ROUNDS = int(os.environ.get("KILN_BENCH_EXEC_ROUNDS", "5"))
BATCH = int(os.environ.get("KILN_BENCH_EXEC_BATCH", "40"))
SPARK_BATCH = int(os.environ.get("KILN_BENCH_EXEC_SPARK_BATCH", "10"))
NEW_CONTEXTS = int(os.environ.get("KILN_BENCH_EXEC_NEW_CONTEXTS", "3"))
# Time for the driver to have its next spare REPL warm (a cold Python start on a busy machine).
SPARE_SECONDS = float(os.environ.get("KILN_BENCH_EXEC_SPARE_SECONDS", "30"))

_DIRECT = """
import statistics, sys, time
from pyspark.sql import SparkSession
spark = SparkSession.builder.master(sys.argv[1]).config("spark.ui.enabled", "false").getOrCreate()
for _ in range(5):
    spark.range(1).collect()
print("ready", flush=True)
for line in sys.stdin:
    times = []
    for _ in range(int(line)):
        t = time.perf_counter()
        spark.range(1).collect()
        times.append(time.perf_counter() - t)
    print(" ".join(str(t) for t in times), flush=True)
spark.stop()
"""


class Api:
    """A keep-alive client of Kiln's 1.2 API on one cluster."""

    def __init__(self, client: httpx.Client, cluster_id: str) -> None:
        self.client = client
        self.cluster_id = cluster_id

    def create(self) -> str:
        r = self.client.post("/api/1.2/contexts/create", json={"clusterId": self.cluster_id})
        r.raise_for_status()
        context_id = str(r.json()["id"])
        params = {"clusterId": self.cluster_id, "contextId": context_id}
        while True:
            status = self.client.get("/api/1.2/contexts/status", params=params).json()["status"]
            if status == "Running":
                return context_id
            if status == "Error":
                raise RuntimeError(f"context {context_id} failed")

    def run(self, context_id: str, command: str) -> dict[str, Any]:
        r = self.client.post(
            "/api/1.2/commands/execute",
            json={"clusterId": self.cluster_id, "contextId": context_id, "command": command},
        )
        r.raise_for_status()
        params = {
            "clusterId": self.cluster_id,
            "contextId": context_id,
            "commandId": r.json()["id"],
        }
        while True:
            body: dict[str, Any] = self.client.get("/api/1.2/commands/status", params=params).json()
            if body["status"] in ("Finished", "Error", "Cancelled"):
                if body["status"] != "Finished" or body["results"]["resultType"] == "error":
                    raise RuntimeError(f"{command!r} failed: {body}")
                return body

    def destroy(self, context_id: str) -> None:
        self.client.post(
            "/api/1.2/contexts/destroy",
            json={"clusterId": self.cluster_id, "contextId": context_id},
        ).raise_for_status()


def timed(call: Callable[[], object], n: int) -> list[float]:
    """Seconds of each of `n` calls."""
    out = []
    for _ in range(n):
        t = time.perf_counter()
        call()
        out.append(time.perf_counter() - t)
    return out


class Kernel:
    """An ipykernel driven by jupyter_client, as a notebook front end drives it."""

    def __init__(self) -> None:
        from jupyter_client.manager import start_new_kernel

        self.manager, self.client = start_new_kernel(
            kernel_name="python3", stderr=subprocess.DEVNULL
        )

    def run(self, code: str) -> None:
        msg_id = self.client.execute(code)
        while True:
            reply = self.client.get_shell_msg(timeout=30)
            if reply["parent_header"].get("msg_id") == msg_id:
                break
        while True:
            msg = self.client.get_iopub_msg(timeout=30)
            if (
                msg["parent_header"].get("msg_id") == msg_id
                and msg["msg_type"] == "status"
                and msg["content"]["execution_state"] == "idle"
            ):
                return

    def stop(self) -> None:
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=True)


def kernel_first_result() -> float:
    """Seconds from asking for a new Jupyter kernel to its first result."""
    t = time.perf_counter()
    kernel = Kernel()
    kernel.run("1+1")
    elapsed = time.perf_counter() - t
    kernel.stop()
    return elapsed


def _start_cluster(client: httpx.Client, cores: int) -> tuple[str, int]:
    """A single-node cluster as large as the machine (Spark local mode); its id and cores."""
    types = client.get("/api/2.1/clusters/list-node-types").json()["node_types"]
    node = max((t for t in types if t["num_cores"] <= cores), key=lambda t: t["num_cores"])
    r = client.post(
        "/api/2.1/clusters/create",
        json={
            "cluster_name": "bench-execution",
            "spark_version": RUNTIME,
            "node_type_id": node["node_type_id"],
            "num_workers": 0,
        },
    )
    r.raise_for_status()
    cid = str(r.json()["cluster_id"])
    while True:
        state = client.get("/api/2.1/clusters/get", params={"cluster_id": cid}).json()["state"]
        if state == "RUNNING":
            return cid, int(node["num_cores"])
        if state in ("TERMINATED", "ERROR"):
            raise RuntimeError(f"cluster {cid} failed to start")
        time.sleep(0.2)


def main() -> None:
    """The three figures, each beside its baseline."""
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        proc, url, _ = _start_kiln(data_dir)
        direct: subprocess.Popen[str] | None = None
        kernel: Kernel | None = None
        try:
            client = admin_client(data_dir, url, timeout=120)
            cid, cores = _start_cluster(client, cores)
            api = Api(client, cid)
            context = api.create()
            for _ in range(5):
                api.run(context, "1+1")
                api.run(context, "spark.range(1).collect()")
            kernel = Kernel()
            for _ in range(5):
                kernel.run("1+1")
            direct = subprocess.Popen(
                [PY, "-c", _DIRECT, f"local[{cores}]"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
                env={**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"},
            )
            assert direct.stdin is not None and direct.stdout is not None
            assert direct.stdout.readline().strip() == "ready"
            jupyter, kiln_trip, local, kiln_spark = [], [], [], []
            running = kernel
            for _ in range(ROUNDS):
                jupyter += timed(lambda: running.run("1+1"), BATCH)
                kiln_trip += timed(lambda: api.run(context, "1+1"), BATCH)
                direct.stdin.write(f"{SPARK_BATCH}\n")
                direct.stdin.flush()
                local += [float(t) for t in direct.stdout.readline().split()]
                kiln_spark += timed(
                    lambda: api.run(context, "spark.range(1).collect()"), SPARK_BATCH
                )
            kernel.stop()
            kernel = None
            direct.stdin.close()
            direct.wait(timeout=60)
            direct = None
            new_context, new_kernel = [], []
            for _ in range(NEW_CONTEXTS):
                time.sleep(SPARE_SECONDS)  # the driver readies its next spare REPL
                t = time.perf_counter()
                fresh = api.create()
                api.run(fresh, "1+1")
                new_context.append(time.perf_counter() - t)
                api.destroy(fresh)
                new_kernel.append(kernel_first_result())
            client.post("/api/2.1/clusters/permanent-delete", json={"cluster_id": cid})
        finally:
            if kernel is not None:
                kernel.stop()
            if direct is not None:
                direct.kill()
            _stop(proc)
    ms = 1000.0
    print(f"{'figure':<40} {'value':>10}   {'baseline / target':<44} verdict")
    trip, base = statistics.median(kiln_trip), statistics.median(jupyter)
    ratio = trip / base
    row(
        "1+1 round trip through the REST API",
        f"{trip * ms:.2f} ms",
        f"Jupyter kernel execute round trip {base * ms:.2f} ms",
        f"{ratio:.2f}x (target <= 3x) {'PASS' if ratio <= 3 else 'FAIL'}",
        widths=(40, 10, 44),
    )
    spark, near = statistics.median(kiln_spark), statistics.median(local)
    ratio = spark / near
    row(
        "spark.range(1).collect() through the API",
        f"{spark * ms:.1f} ms",
        f"directly in a driver process {near * ms:.1f} ms",
        f"{ratio:.2f}x (target <= 1.5x) {'PASS' if ratio <= 1.5 else 'FAIL'}",
        widths=(40, 10, 44),
    )
    first = statistics.median(new_context)
    row(
        "new context -> first result",
        f"{first:.3f} s",
        f"new Jupyter kernel -> first result {statistics.median(new_kernel):.3f} s",
        f"(target <= 1 s) {'PASS' if first <= 1 else 'FAIL'}",
        widths=(40, 10, 44),
    )
    print(
        f"samples: round trips {len(kiln_trip)}+{len(jupyter)}, spark calls "
        f"{len(kiln_spark)}+{len(local)}, new contexts {[round(t, 3) for t in new_context]}"
    )


if __name__ == "__main__":
    main()
