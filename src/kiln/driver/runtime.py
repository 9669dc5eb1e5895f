"""The driver runtime: `python -m kiln.driver.runtime <config.json>`.

Starts the cluster's SparkSession (local mode, or connected to the standalone master the
backend started), keeps it alive, and serves the control endpoint: health, status (Spark
application id, UI port, executors, jobs, last activity), a smoke job, shutdown, and the
execution contexts (`kiln.driver.contexts`: one REPL process each, attached to this Spark
application through py4j or through a Spark Connect server started here on loopback).
"""

from __future__ import annotations

import json
import logging
import os
import secrets as tokens
import signal
import socket
import sys
import threading
import time
import traceback
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kiln.driver.contexts.manager import ContextManager
from kiln.driver.control import ControlServer, HttpError
from kiln.driver.protocol import (
    PATH_HEALTH,
    PATH_SHUTDOWN,
    PATH_SMOKE_JOB,
    PATH_STATUS,
    DriverConfig,
    DriverState,
    write_json_atomic,
)
from kiln.driver.repl.outputs import OutputLimits

if TYPE_CHECKING:
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

__all__ = ["DriverRuntime", "main"]

log = logging.getLogger("kiln.driver")

# How long the runtime waits for the expected executors before reporting RUNNING anyway.
EXECUTOR_WAIT_SECONDS = 180.0
# How often Spark's own activity (running jobs) is sampled for idle detection.
ACTIVITY_POLL_SECONDS = 1.0
MAX_SMOKE_TASKS = 10_000
CONNECT_PLUGIN = "org.apache.spark.sql.connect.SparkConnectPlugin"
# Spark Connect sessions of contexts live as long as their contexts (the driver ends them).
CONNECT_SESSION_TIMEOUT = "3650d"
# Databricks' setting for the text output limit of a command.
MAX_OUTPUT_CONF = "spark.databricks.driver.maxReplOutputLength"


def _limits(conf: dict[str, str]) -> OutputLimits:
    value = conf.get(MAX_OUTPUT_CONF, "")
    if value.isdigit() and int(value) > 0:
        return OutputLimits(text_chars=int(value))
    return OutputLimits()


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class DriverRuntime:
    """One cluster's driver: the SparkSession, the control endpoint and activity tracking."""

    def __init__(self, config: DriverConfig, secrets: dict[str, str]) -> None:
        self.config = config
        self._spark_secret = secrets["spark"]
        self.state = DriverState.STARTING
        self.error: str | None = None
        self.spark: SparkSession | None = None
        self.started_at = time.time()
        self.last_activity = time.time()
        self.app_id: str | None = None
        self.ui_port: int | None = None
        self.spark_version: str | None = None
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self.control = ControlServer(config.bind_host, config.control_port, secrets["control"])
        self.control.route("GET", PATH_HEALTH, lambda body, query: self.health())
        self.control.route("GET", PATH_STATUS, lambda body, query: self.status())
        self.control.route("POST", PATH_SMOKE_JOB, lambda body, query: self.smoke_job(body))
        self.control.route("POST", PATH_SHUTDOWN, lambda body, query: self.request_shutdown())
        # Spark Connect for standard-access contexts: loopback only, a token of its own.
        self._connect_port = 0
        self._connect_token = tokens.token_hex(24)
        self._connect_started = False
        self._connect_lock = threading.Lock()
        self.contexts = ContextManager(
            config.cluster_id,
            self,
            Path(config.state_file).parent / "contexts",
            python=config.spark_conf.get("spark.pyspark.python"),
            limits=_limits(config.spark_conf),
        )
        self.contexts.register(self.control)

    # -- lifecycle ---------------------------------------------------------------------------

    def run(self) -> int:
        """Start everything, serve until SIGTERM or /shutdown, then stop Spark. The exit code."""
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        self.control.start()
        self.publish()
        try:
            self.start_spark()
        except BaseException as exc:  # SystemExit from a signal during start included
            self.state = DriverState.FAILED
            self.error = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            log.error("Spark failed to start: %s", traceback.format_exc())
            self.publish()
            self.control.stop()
            return 1
        self.state = DriverState.RUNNING
        self.publish()
        threading.Thread(target=self._watch_activity, name="kiln-activity", daemon=True).start()
        if self.config.access_mode:
            self.contexts.warm(self.config.access_mode)
        while not self.stopping.wait(1.0):
            pass
        self.state = DriverState.STOPPING
        self.publish()
        self.contexts.stop()
        self.stop_spark()
        self.control.stop()
        return 0

    def _on_signal(self, signum: int, frame: object) -> None:
        if self.state == DriverState.STARTING:
            # Spark is half up inside a blocking call: leave now; the JVM dies with its stdin.
            raise SystemExit(128 + signum)
        self.stopping.set()

    def publish(self) -> None:
        """Write the state file the backend reads (pid, ports, Spark identity, error)."""
        write_json_atomic(
            Path(self.config.state_file),
            {
                "pid": os.getpid(),
                "state": self.state.value,
                "control_port": self.control.port,
                "app_id": self.app_id,
                "ui_port": self.ui_port,
                "spark_version": self.spark_version,
                "error": self.error,
            },
        )

    def start_spark(self) -> None:
        """Launch the driver JVM and the SparkSession, wait for executors, run a warm-up job."""
        from pyspark import SparkConf, SparkContext
        from pyspark.java_gateway import launch_gateway
        from pyspark.sql import SparkSession

        log.info("runtime up in %.2fs; launching the driver JVM", time.time() - self.started_at)
        launch = SparkConf(loadDefaults=False).setAll(list(self.config.launch_conf.items()))
        gateway = launch_gateway(launch)  # type: ignore[no-untyped-call]
        log.info("driver JVM up at %.2fs", time.time() - self.started_at)
        conf = SparkConf(loadDefaults=False).setAll(list(self.config.spark_conf.items()))
        conf.set("spark.master", self.config.master)
        conf.set("spark.app.name", self.config.app_name)
        conf.set("spark.authenticate", "true")
        conf.set("spark.authenticate.secret", self._spark_secret)
        self._connect_port = _free_port("127.0.0.1")
        conf.set("spark.connect.grpc.binding.address", "127.0.0.1")
        conf.set("spark.connect.grpc.binding.port", str(self._connect_port))
        conf.set("spark.connect.authenticate.token", self._connect_token)
        conf.set("spark.connect.session.manager.defaultSessionTimeout", CONNECT_SESSION_TIMEOUT)
        if self.config.access_mode == "connect":
            plugins = [p for p in conf.get("spark.plugins", "").split(",") if p]
            conf.set("spark.plugins", ",".join([*plugins, CONNECT_PLUGIN]))
            self._connect_started = True
        sc = SparkContext(conf=conf, gateway=gateway)
        self.spark = SparkSession.builder.getOrCreate()
        self.app_id = sc.applicationId
        self.spark_version = sc.version
        url = sc.uiWebUrl
        self.ui_port = int(url.rsplit(":", 1)[1]) if url else None
        self.publish()
        log.info("SparkContext %s up at %.2fs", self.app_id, time.time() - self.started_at)
        self._wait_for_executors(sc)
        if self.config.warmup:
            slots = max(self.config.expected_executors, 1) * 2
            self.spark.range(0, slots, 1, slots).count()
        log.info("warm-up job done at %.2fs", time.time() - self.started_at)
        self.touch()

    def _wait_for_executors(self, sc: SparkContext) -> None:
        deadline = time.monotonic() + EXECUTOR_WAIT_SECONDS
        while len(self.executors()) < self.config.expected_executors:
            if time.monotonic() > deadline:
                log.warning("only %d executors registered", len(self.executors()))
                return
            time.sleep(0.2)

    def stop_spark(self) -> None:
        """Stop the SparkSession (executors and the application end with it)."""
        if self.spark is not None:
            try:
                self.spark.stop()
            except Exception:
                log.exception("stopping Spark failed")

    # -- what execution contexts need ------------------------------------------------------

    def spark_info(self, mode: str) -> dict[str, Any]:
        """How a REPL reaches this Spark application in `mode`."""
        sc = self._sc()
        if mode == "classic":
            assert sc._gateway is not None
            params = sc._gateway.gateway_parameters
            return {"gateway_port": params.port, "gateway_secret": params.auth_token}
        with self._connect_lock:
            if not self._connect_started:
                # What the Connect plugin does at start, done on first need instead.
                service = getattr(
                    sc._jvm, "org.apache.spark.sql.connect.service.SparkConnectService"
                )
                service.start(sc._jsc.sc())
                self._connect_started = True
        return {"connect_url": f"sc://localhost:{self._connect_port}/;token={self._connect_token}"}

    def cancel_job_tag(self, tag: str) -> None:
        """Cancel every running job carrying `tag` (one context's jobs)."""
        self._sc().cancelJobsWithTag(tag)

    def request_shutdown(self) -> dict[str, Any]:
        """Ask the runtime to stop (answered before it does)."""
        self.stopping.set()
        return {}

    # -- activity and status -----------------------------------------------------------------

    def touch(self) -> None:
        """Record activity now (a command, a job): idle time restarts from here."""
        with self._lock:
            self.last_activity = time.time()

    def _watch_activity(self) -> None:
        while not self.stopping.wait(ACTIVITY_POLL_SECONDS):
            try:
                # A running command is activity even without Spark jobs (a long Python loop).
                if self.contexts.busy() or self._sc().statusTracker().getActiveJobsIds():
                    self.touch()
            except Exception:
                log.debug("activity sample failed", exc_info=True)

    def _sc(self) -> SparkContext:
        if self.spark is None:
            raise HttpError(503, "TEMPORARILY_UNAVAILABLE", "Spark is not running yet.")
        return self.spark.sparkContext

    def health(self) -> dict[str, Any]:
        """Liveness: the runtime's state and pid."""
        return {"state": self.state.value, "pid": os.getpid(), "error": self.error}

    def executors(self) -> list[dict[str, Any]]:
        """The application's live executors (not the driver), from Spark's own status API."""
        if self.ui_port is not None and self.app_id is not None:
            url = (
                f"http://{self.config.bind_host}:{self.ui_port}"
                f"/api/v1/applications/{self.app_id}/executors"
            )
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    data = json.load(response)
                return [
                    {
                        "id": e["id"],
                        "host_port": e.get("hostPort"),
                        "total_cores": e.get("totalCores"),
                        "active_tasks": e.get("activeTasks"),
                        "add_time": e.get("addTime"),
                    }
                    for e in data
                    if e.get("id") != "driver" and e.get("isActive", True)
                ]
            except OSError:
                log.debug("executor list from the UI failed", exc_info=True)
        infos = self._sc()._jsc.sc().statusTracker().getExecutorInfos()
        found = [f"{i.host()}:{i.port()}" for i in infos]
        # The first entry is the driver itself.
        return [{"id": hp, "host_port": hp} for hp in found[1:]]

    def status(self) -> dict[str, Any]:
        """What the control plane shows and decides on: Spark identity, executors, load."""
        body: dict[str, Any] = {
            "state": self.state.value,
            "pid": os.getpid(),
            "app_id": self.app_id,
            "ui_port": self.ui_port,
            "spark_version": self.spark_version,
            "started_at": self.started_at,
            "error": self.error,
        }
        if self.state != DriverState.RUNNING:
            return body
        tracker = self._sc().statusTracker()
        jobs = list(tracker.getActiveJobsIds())
        running = pending = 0
        for stage_id in tracker.getActiveStageIds():
            info = tracker.getStageInfo(stage_id)
            if info is None:
                continue
            running += info.numActiveTasks
            pending += max(info.numTasks - info.numActiveTasks - info.numCompletedTasks, 0)
        if jobs:
            self.touch()
        with self._lock:
            last = self.last_activity
        body.update(
            executors=self.executors(),
            contexts=len(self.contexts.contexts),
            active_jobs=len(jobs),
            running_tasks=running,
            pending_tasks=pending,
            last_activity=last,
        )
        return body

    def smoke_job(self, body: dict[str, Any]) -> dict[str, Any]:
        """Run a small Spark job (`tasks` tasks of `task_ms` each) and answer with its count."""
        tasks, task_ms = body.get("tasks", 1), body.get("task_ms", 0)
        if not isinstance(tasks, int) or not 1 <= tasks <= MAX_SMOKE_TASKS:
            raise HttpError(400, "INVALID_PARAMETER_VALUE", "tasks must be 1-10000")
        if not isinstance(task_ms, int) or not 0 <= task_ms <= 600_000:
            raise HttpError(400, "INVALID_PARAMETER_VALUE", "task_ms must be 0-600000")
        if self.spark is None or self.state != DriverState.RUNNING:
            raise HttpError(503, "TEMPORARILY_UNAVAILABLE", "Spark is not running yet.")
        self.touch()
        started = time.monotonic()
        frame = self.spark.range(0, tasks, 1, tasks)
        if task_ms:
            # A JVM-side sleep: load on the executors without Python workers.
            frame = frame.selectExpr(
                f"reflect('java.lang.Thread', 'sleep', bigint({task_ms})) AS slept"
            ).where("length(slept) >= 0")
        count = frame.count()
        answer: dict[str, Any] = {"count": count}
        imports = body.get("imports") or []
        if imports:
            # Python tasks import the modules on the executors (the cluster's environment).
            if not isinstance(imports, list) or not all(isinstance(m, str) for m in imports):
                raise HttpError(400, "INVALID_PARAMETER_VALUE", "imports must be module names")
            rdd = self.spark.sparkContext.parallelize(range(tasks), tasks)
            answer["imported"] = sorted(set(rdd.mapPartitions(_importer(imports)).collect()))
        self.touch()
        answer["elapsed_ms"] = int((time.monotonic() - started) * 1000)
        return answer


def _importer(names: list[str]) -> Any:
    """A partition function that imports `names` and yields (module, file, python)."""

    def run(_: Any) -> Any:
        import importlib
        import sys

        for name in names:
            module = importlib.import_module(name)
            yield (name, str(getattr(module, "__file__", "")), sys.executable)

    return run


def main(argv: list[str] | None = None) -> int:
    """Entry point: read the config named on the command line and run the driver."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m kiln.driver.runtime <config.json>", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("py4j").setLevel(logging.WARNING)
    config = DriverConfig.read(Path(args[0]))
    secrets = json.loads(Path(config.secrets_file).read_text())
    return DriverRuntime(config, secrets).run()


if __name__ == "__main__":
    sys.exit(main())
