"""The local backend: a cluster's processes on this host.

`num_workers` 0 runs the driver runtime with Spark in local mode (`local[N]`, N the driver
node's cores). With workers it starts a Spark standalone master and one worker JVM per worker
(`bin/spark-class ...deploy.master.Master` / `...deploy.worker.Worker`, sized by the node
type), then the driver connected to the master. Every port binds to the configured host
(loopback by default), `spark.authenticate` is on with a per-cluster secret kept in a 0600
file (never on a command line), and the master's REST submission server is off.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kiln.compute.backends import processes
from kiln.compute.backends.base import (
    BackendContext,
    ClusterBackend,
    DriverStatus,
    InitScriptResult,
    InstanceSpec,
    LaunchFailed,
    LaunchSpec,
    Probe,
    Reporter,
    RuntimeHandle,
)
from kiln.compute.backends.processes import HOME_TAG, ProcessRecord, Reaper
from kiln.compute.driver_client import DriverClient, DriverUnavailable
from kiln.compute.execution.access import access_mode_for
from kiln.compute.spec import ClusterSpec
from kiln.compute.states import EventType, TerminationCode
from kiln.driver.protocol import DriverConfig, DriverState, read_state_file, write_json_atomic

__all__ = ["LocalBackend", "spark_home"]

_MASTER_CLASS = "org.apache.spark.deploy.master.Master"
_WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"
_MASTER_READY = "I have been elected leader"
_WORKER_READY = "Successfully registered with master"
_POLL = 0.2
_LOG_TAIL = 4000
# Daemons (master, workers) only coordinate: a small heap, fast start and little memory.
_DAEMON_JAVA_OPTS = "-XX:+UseSerialGC -XX:TieredStopAtLevel=1"

_LOG4J_DRIVER = """\
rootLogger.level = info
rootLogger.appenderRef.file.ref = file
rootLogger.appenderRef.console.ref = console
appender.file.type = File
appender.file.name = file
appender.file.fileName = {log_file}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = %d{{yy/MM/dd HH:mm:ss}} %p %c{{1}}: %m%n%ex
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.filter.threshold.type = ThresholdFilter
appender.console.filter.threshold.level = warn
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{{yy/MM/dd HH:mm:ss}} %p %c{{1}}: %m%n%ex
logger.jetty.name = org.sparkproject.jetty
logger.jetty.level = warn
"""

_LOG4J_DAEMON = """\
rootLogger.level = info
rootLogger.appenderRef.console.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n%ex
logger.jetty.name = org.sparkproject.jetty
logger.jetty.level = warn
"""


def spark_home() -> Path:
    """Where pyspark's Spark distribution lives (found without importing pyspark)."""
    import importlib.util

    spec = importlib.util.find_spec("pyspark")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("pyspark is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _tail(path: Path, offset: int = 0, limit: int = _LOG_TAIL) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(max(offset, os.path.getsize(path) - limit))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _log_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _driver_memory_mb(node_memory_mb: int) -> int:
    return max(512, min(node_memory_mb // 2, 8192))


def _executor_memory_mb(node_memory_mb: int) -> int:
    return max(384, node_memory_mb * 3 // 4 - 256)


class _Layout:
    """One cluster's folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.secrets = root / "secrets.json"
        self.driver_config = root / "driver.json"
        self.driver_state = root / "driver-state.json"
        self.daemon_conf = root / "conf" / "daemon"
        self.daemon_properties = self.daemon_conf / "daemon.properties"
        self.driver_conf = root / "conf" / "driver"
        self.logs = root / "logs"
        self.driver_logs = self.logs / "driver"
        self.init_logs = self.logs / "init_scripts"
        self.init_dir = root / "init"
        self.work = root / "work"
        self.tmp = root / "tmp"

    def worker_dir(self, index: int) -> Path:
        return self.work / f"w{index}"


class LocalBackend(ClusterBackend):
    """Cluster processes on this host."""

    name = "local"

    def __init__(self, context: BackendContext) -> None:
        super().__init__(context)
        self.settings = context.settings.compute
        self.bind = self.settings.bind_host
        self.reaper = Reaper()

    # -- layout and files ------------------------------------------------------------------

    def layout(self, cluster_id: str) -> _Layout:
        """The folder of one cluster."""
        return _Layout(self.context.clusters_dir / cluster_id)

    def _prepare(self, lay: _Layout) -> dict[str, str]:
        for folder in (lay.root, lay.daemon_conf, lay.driver_conf, lay.driver_logs, lay.init_logs):
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        lay.root.chmod(0o700)
        # Scratch space and the previous run's state do not survive a restart.
        shutil.rmtree(lay.tmp, ignore_errors=True)
        lay.tmp.mkdir(mode=0o700)
        lay.driver_state.unlink(missing_ok=True)
        keys = {"spark": secrets.token_hex(32), "control": secrets.token_hex(32)}
        write_json_atomic(lay.secrets, keys)
        (lay.driver_conf / "log4j2.properties").write_text(
            _LOG4J_DRIVER.format(log_file=lay.driver_logs / "log4j-active.log")
        )
        (lay.daemon_conf / "log4j2.properties").write_text(_LOG4J_DAEMON)
        props = (
            "spark.authenticate true\n"
            f"spark.authenticate.secret {keys['spark']}\n"
            "spark.master.rest.enabled false\n"
            "spark.ui.killEnabled false\n"
            "spark.worker.ui.retainedExecutors 100\n"
        )
        fd = os.open(lay.daemon_properties, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(props)
        return keys

    def _env(self, launch: LaunchSpec, lay: _Layout, role: str) -> dict[str, str]:
        # The control plane's own settings are none of the cluster's business.
        env = {k: v for k, v in os.environ.items() if not k.startswith("KILN_")}
        for key in ("PYSPARK_SUBMIT_ARGS", "PYSPARK_DRIVER_PYTHON", "SPARK_CONF_DIR"):
            env.pop(key, None)
        env.update(launch.env)
        env.update(launch.environment.env)
        env.update(
            {
                "SPARK_HOME": str(spark_home()),
                "SPARK_LOCAL_IP": self.bind,
                "PYSPARK_PYTHON": launch.environment.python,
                "PYTHONUNBUFFERED": "1",
                HOME_TAG: str(lay.root),
                "KILN_CLUSTER_ID": launch.cluster_id,
                "KILN_CLUSTER_ROLE": role,
            }
        )
        if role in ("master", "worker"):
            env["SPARK_CONF_DIR"] = str(lay.daemon_conf)
            env["SPARK_DAEMON_MEMORY"] = self.settings.daemon_memory
            env["SPARK_DAEMON_JAVA_OPTS"] = _DAEMON_JAVA_OPTS
            env["SPARK_LOG_DIR"] = str(lay.logs)
        else:
            env["SPARK_CONF_DIR"] = str(lay.driver_conf)
        return env

    # -- start ---------------------------------------------------------------------------------

    async def start(self, launch: LaunchSpec, reporter: Reporter) -> RuntimeHandle:
        """Init scripts, then (with workers) the master, then workers and driver together."""
        lay = self.layout(launch.cluster_id)
        await asyncio.to_thread(self._prepare, lay)
        handle = RuntimeHandle(
            backend=self.name,
            data={"dir": str(lay.root), "processes": [], "next_worker": 0},
            secret_path=str(lay.secrets),
        )
        await reporter.record(handle)
        await self._run_init_scripts(launch, lay, reporter)
        if launch.spec.standalone:
            await self._start_master(handle, launch, lay, reporter)
            async with asyncio.TaskGroup() as group:
                for _ in range(launch.workers):
                    group.create_task(self._start_worker(handle, launch, lay, reporter))
                group.create_task(self._start_driver(handle, launch, lay, reporter))
        else:
            await self._start_driver(handle, launch, lay, reporter)
        return handle

    async def _run_init_scripts(self, launch: LaunchSpec, lay: _Layout, reporter: Reporter) -> None:
        if not launch.init_scripts:
            return
        await reporter.event(EventType.INIT_SCRIPTS_STARTED, reported_for_node=self.bind)
        results: list[InitScriptResult] = []
        env = self._env(launch, lay, "init")
        failed = False
        for i, item in enumerate(launch.init_scripts):
            if failed:
                results.append(InitScriptResult(item.script, "SKIPPED", 0))
                continue
            result = await asyncio.to_thread(
                self._run_init_script, i, item.script, item.content, env, lay
            )
            results.append(result)
            failed = result.status != "SUCCEEDED"
        details = {
            "init_scripts": {
                "cluster": [r.wire() for r in results],
                "reported_for_node": self.bind,
            }
        }
        await reporter.event(EventType.INIT_SCRIPTS_FINISHED, **details)
        if failed:
            bad = next(r for r in results if r.status != "SUCCEEDED")
            raise LaunchFailed(
                TerminationCode.INIT_SCRIPT_FAILURE,
                f"Init script {bad.script.path} failed: {bad.output[-1000:]}",
                init_scripts=tuple(results),
            )

    def _run_init_script(
        self, i: int, script: Any, content: bytes, env: dict[str, str], lay: _Layout
    ) -> InitScriptResult:
        lay.init_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = lay.init_dir / f"{i:02d}_{script.name}"
        path.write_bytes(content)
        stamp = datetime.now(UTC).strftime("%Y%m%d_%H%M%S")
        out_log = lay.init_logs / f"{stamp}_{i:02d}_{script.name}.stdout.log"
        err_log = lay.init_logs / f"{stamp}_{i:02d}_{script.name}.stderr.log"
        started = time.monotonic()
        with open(out_log, "wb") as out, open(err_log, "wb") as err:
            proc = subprocess.Popen(
                ["bash", str(path)],
                env=env,
                cwd=lay.root,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
            try:
                code = proc.wait(timeout=self.settings.init_script_timeout_seconds)
            except subprocess.TimeoutExpired:
                # The script and anything it started share its session's process group.
                with contextlib.suppress(OSError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                code = -1
        seconds = int(time.monotonic() - started)
        if code == 0:
            return InitScriptResult(script, "SUCCEEDED", seconds)
        output = (_tail(err_log) + "\n" + _tail(out_log)).strip()
        reason = "timed out" if code == -1 else f"exited with code {code}"
        return InitScriptResult(script, "FAILED_EXECUTION", seconds, f"Script {reason}. {output}")

    async def _spawn(
        self,
        handle: RuntimeHandle,
        reporter: Reporter,
        role: str,
        argv: list[str],
        env: dict[str, str],
        log_path: Path,
        cwd: Path,
        index: int = 0,
        err_path: Path | None = None,
    ) -> ProcessRecord:
        started = asyncio.ensure_future(
            asyncio.to_thread(
                processes.spawn,
                role,
                argv,
                env=env,
                log_path=log_path,
                cwd=cwd,
                reaper=self.reaper,
                index=index,
                err_path=err_path,
            )
        )
        try:
            record = await asyncio.shield(started)
        except asyncio.CancelledError:
            # The process starts whether or not we wait: never leave it behind unrecorded.
            with contextlib.suppress(Exception):
                orphan = await started
                await asyncio.to_thread(
                    processes.stop_processes, [orphan], None, grace=1.0, reaper=self.reaper
                )
            raise
        handle.data["processes"] = [*handle.data["processes"], record.to_json()]
        await reporter.record(handle)
        return record

    async def _wait_for_log(
        self, record: ProcessRecord, log_path: Path, offset: int, needle: str, what: str
    ) -> str:
        deadline = time.monotonic() + self.settings.start_timeout_seconds
        while True:
            text = await asyncio.to_thread(_tail, log_path, offset, 1 << 20)
            if needle in text:
                return text
            if processes.verified(record) is None:
                self.reaper.reap()
                raise LaunchFailed(
                    TerminationCode.SPARK_STARTUP_FAILURE,
                    f"The {what} exited while starting: {_tail(log_path, offset)[-1500:]}",
                )
            if time.monotonic() > deadline:
                raise LaunchFailed(
                    TerminationCode.SPARK_STARTUP_FAILURE, f"The {what} did not start in time."
                )
            await asyncio.sleep(_POLL)

    async def _start_master(
        self, handle: RuntimeHandle, launch: LaunchSpec, lay: _Layout, reporter: Reporter
    ) -> None:
        port, ui_port = _free_port(self.bind), _free_port(self.bind)
        log_path = lay.logs / "master.out"
        offset = _log_size(log_path)
        argv = [
            str(spark_home() / "bin" / "spark-class"),
            _MASTER_CLASS,
            "--host", self.bind,
            "--port", str(port),
            "--webui-port", str(ui_port),
            "--properties-file", str(lay.daemon_properties),
        ]  # fmt: skip
        record = await self._spawn(
            handle, reporter, "master", argv, self._env(launch, lay, "master"), log_path, lay.root
        )
        text = await self._wait_for_log(record, log_path, offset, _MASTER_READY, "Spark master")
        url = f"spark://{self.bind}:{port}"
        for line in text.splitlines():
            if "Starting Spark master at " in line:
                url = line.split("Starting Spark master at ", 1)[1].strip()
        handle.data.update(master_url=url, master_ui_port=ui_port)
        await reporter.record(handle)

    async def _start_worker(
        self, handle: RuntimeHandle, launch: LaunchSpec, lay: _Layout, reporter: Reporter
    ) -> None:
        index = int(handle.data.get("next_worker", 0))
        handle.data["next_worker"] = index + 1
        node = launch.spec.node_type
        work_dir = lay.worker_dir(index)
        work_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        log_path = lay.logs / f"worker-{index}.out"
        offset = _log_size(log_path)
        argv = [
            str(spark_home() / "bin" / "spark-class"),
            _WORKER_CLASS,
            "--host", self.bind,
            "--port", "0",
            "--webui-port", str(_free_port(self.bind)),
            "--cores", str(node.num_cores),
            "--memory", f"{node.memory_mb}m",
            "--work-dir", str(work_dir),
            "--properties-file", str(lay.daemon_properties),
            str(handle.data["master_url"]),
        ]  # fmt: skip
        record = await self._spawn(
            handle,
            reporter,
            "worker",
            argv,
            self._env(launch, lay, "worker"),
            log_path,
            lay.root,
            index,
        )
        await self._wait_for_log(record, log_path, offset, _WORKER_READY, f"worker {index}")

    def _driver_config(
        self, handle: RuntimeHandle, launch: LaunchSpec, lay: _Layout, keys_path: Path
    ) -> DriverConfig:
        spec = launch.spec
        driver = spec.driver_node_type
        ui_port = _free_port(self.bind)
        conf: dict[str, str] = {
            "spark.ui.showConsoleProgress": "false",
            "spark.local.dir": str(lay.tmp),
            "spark.pyspark.python": launch.environment.python,
            "spark.executorEnv.PYSPARK_PYTHON": launch.environment.python,
            "spark.ui.port": str(ui_port),
        }
        if spec.standalone:
            node = spec.node_type
            conf["spark.executor.cores"] = str(node.num_cores)
            conf["spark.executor.memory"] = f"{_executor_memory_mb(node.memory_mb)}m"
        conf.update(launch.spark_conf)
        # Kiln's bindings and the UI's public prefix always win over anything inherited.
        conf.update(
            {
                "spark.driver.host": self.bind,
                "spark.driver.bindAddress": self.bind,
                "spark.ui.proxyBase": f"{launch.proxy_base}/{conf.get('spark.ui.port', ui_port)}",
            }
        )
        master = str(handle.data.get("master_url") or "")
        local_master = conf.pop("spark.master", "")
        if not spec.standalone:
            master = local_master or f"local[{driver.num_cores}]"
        launch_conf = {
            "spark.driver.memory": conf.pop("spark.driver.memory", "")
            or f"{_driver_memory_mb(driver.memory_mb)}m"
        }
        for key in (
            "spark.driver.extraJavaOptions",
            "spark.driver.extraClassPath",
            "spark.driver.extraLibraryPath",
            "spark.jars",
            "spark.jars.packages",
        ):
            if key in conf:
                launch_conf[key] = conf[key]
        return DriverConfig(
            cluster_id=launch.cluster_id,
            app_name=spec.cluster_name or launch.cluster_id,
            master=master,
            bind_host=self.bind,
            secrets_file=str(keys_path),
            state_file=str(lay.driver_state),
            launch_conf=launch_conf,
            spark_conf=conf,
            expected_executors=launch.workers if spec.standalone else 0,
            # Known at launch, so the runtime warms a REPL of the right kind (and starts Spark
            # Connect on standard clusters) before the first context is asked for.
            access_mode=access_mode_for(spec.data_security_mode, spec.single_user_name),
        )

    async def _start_driver(
        self, handle: RuntimeHandle, launch: LaunchSpec, lay: _Layout, reporter: Reporter
    ) -> None:
        config = self._driver_config(handle, launch, lay, lay.secrets)
        await asyncio.to_thread(config.write, lay.driver_config)
        argv = [sys.executable, "-m", "kiln.driver.runtime", str(lay.driver_config)]
        env = self._env(launch, lay, "driver")
        # The runtime runs on Kiln's own Python; user code (REPLs, executors) on the cluster's.
        env["PYSPARK_DRIVER_PYTHON"] = sys.executable
        stdout, stderr = lay.driver_logs / "stdout", lay.driver_logs / "stderr"
        record = await self._spawn(
            handle, reporter, "driver", argv, env, stdout, lay.root, err_path=stderr
        )
        deadline = time.monotonic() + self.settings.start_timeout_seconds
        while True:
            state = await asyncio.to_thread(read_state_file, lay.driver_state)
            if state and state.get("pid") == record.pid:
                if handle.control_url is None and state.get("control_port"):
                    handle.control_url = f"http://{self.bind}:{state['control_port']}"
                    await reporter.record(handle)
                if state.get("state") == DriverState.RUNNING:
                    handle.spark_app_id = state.get("app_id")
                    handle.spark_ui_port = state.get("ui_port")
                    await reporter.record(handle)
                    return
                if state.get("state") == DriverState.FAILED:
                    raise LaunchFailed(
                        TerminationCode.SPARK_STARTUP_FAILURE,
                        f"Spark failed to start: {state.get('error') or _tail(stderr)[-1500:]}",
                    )
            if processes.verified(record) is None:
                self.reaper.reap()
                code = self.reaper.exit_code(record.pid)
                raise LaunchFailed(
                    TerminationCode.SPARK_STARTUP_FAILURE,
                    f"The driver exited while starting (code {code}): {_tail(stderr)[-1500:]}",
                )
            if time.monotonic() > deadline:
                raise LaunchFailed(
                    TerminationCode.DRIVER_LAUNCH_TIMEOUT,
                    f"The driver did not start within {self.settings.start_timeout_seconds:.0f}s.",
                )
            await asyncio.sleep(_POLL)

    # -- resize ----------------------------------------------------------------------------

    def _records(self, handle: RuntimeHandle, role: str | None = None) -> list[ProcessRecord]:
        records = [ProcessRecord.of(p) for p in handle.data.get("processes", [])]
        return [r for r in records if role is None or r.role == role]

    async def resize(
        self, handle: RuntimeHandle, launch: LaunchSpec, workers: int, reporter: Reporter
    ) -> RuntimeHandle:
        """Start or stop worker JVMs until `workers` run; new ones get executors on their own."""
        lay = self.layout(launch.cluster_id)
        current = [r for r in self._records(handle, "worker") if processes.verified(r)]
        if workers > len(current):
            async with asyncio.TaskGroup() as group:
                for _ in range(workers - len(current)):
                    group.create_task(self._start_worker(handle, launch, lay, reporter))
            await self._wait_for_executors(handle, workers)
        elif workers < len(current):
            doomed = sorted(current, key=lambda r: r.index)[workers:]
            await asyncio.to_thread(
                processes.stop_processes,
                doomed,
                None,
                grace=self.settings.stop_grace_seconds,
                reaper=self.reaper,
            )
            gone = {r.pid for r in doomed}
            handle.data["processes"] = [
                p for p in handle.data["processes"] if int(p["pid"]) not in gone
            ]
            await reporter.record(handle)
        return handle

    def resizable(self, handle: RuntimeHandle, spec: ClusterSpec) -> bool:
        """Workers can come and go under a standalone driver; local mode must restart."""
        return bool(handle.data.get("master_url")) == spec.standalone

    async def _wait_for_executors(self, handle: RuntimeHandle, count: int) -> None:
        deadline = time.monotonic() + self.settings.start_timeout_seconds
        while time.monotonic() < deadline:
            probe = await self.probe(handle)
            if probe.status is not None and len(probe.status.executors) >= count:
                return
            await asyncio.sleep(0.5)

    # -- watch and stop --------------------------------------------------------------------

    def _client(self, handle: RuntimeHandle, timeout: float = 5.0) -> DriverClient:
        if not handle.control_url or not handle.secret_path:
            raise DriverUnavailable("the driver has no control endpoint yet")
        return DriverClient.from_files(handle.control_url, handle.secret_path, timeout=timeout)

    async def probe(self, handle: RuntimeHandle) -> Probe:
        """Driver process alive (PID and start time), then its /status."""
        self.reaper.reap()
        drivers = self._records(handle, "driver")
        if not drivers or processes.verified(drivers[-1]) is None:
            pid = drivers[-1].pid if drivers else None
            code = self.reaper.exit_code(pid) if pid else None
            detail = f" with exit code {code}" if code is not None else ""
            return Probe(False, False, reason=f"The driver process (pid {pid}) exited{detail}.")
        try:
            body = await self._client(handle).status()
        except (DriverUnavailable, OSError, ValueError, KeyError) as exc:
            return Probe(True, False, reason=f"The driver did not answer: {exc}")
        return Probe(True, True, DriverStatus.of(body))

    async def adopt(self, handle: RuntimeHandle) -> bool:
        """Whether every recorded process is still ours and the driver answers as RUNNING."""
        records = self._records(handle)
        if not records or not any(r.role == "driver" for r in records):
            return False
        if any(processes.verified(r) is None for r in records):
            return False
        try:
            health = await self._client(handle).health()
        except (DriverUnavailable, OSError, ValueError, KeyError):
            return False
        return health.get("state") == DriverState.RUNNING

    async def stop(self, cluster_id: str, handle: RuntimeHandle | None) -> None:
        """SIGTERM every process of the cluster, SIGKILL what outlives the grace period."""
        lay = self.layout(cluster_id)
        records = self._records(handle) if handle is not None else []
        await asyncio.to_thread(
            processes.stop_processes,
            records,
            str(lay.root),
            grace=self.settings.stop_grace_seconds,
            reaper=self.reaper,
        )
        await asyncio.to_thread(shutil.rmtree, lay.tmp, True)

    async def smoke_job(self, handle: RuntimeHandle, tasks: int, task_ms: int) -> dict[str, Any]:
        """Run a small job through the driver's control endpoint."""
        return await self._client(handle).smoke_job(tasks, task_ms)

    def proxy_ports(self, handle: RuntimeHandle) -> set[int]:
        """The Spark UI and, with workers, the standalone master's UI."""
        ports = super().proxy_ports(handle)
        if handle.data.get("master_ui_port"):
            ports.add(int(handle.data["master_ui_port"]))
        return ports

    def log_files(self, cluster_id: str, handle: RuntimeHandle | None) -> list[tuple[str, Path]]:
        """Driver, executor and init-script logs, named as Databricks delivers them."""
        lay = self.layout(cluster_id)
        found: list[tuple[str, Path]] = []
        for name in ("stdout", "stderr", "log4j-active.log"):
            if (lay.driver_logs / name).is_file():
                found.append((f"driver/{name}", lay.driver_logs / name))
        if lay.work.is_dir():
            for worker in sorted(lay.work.iterdir()):
                for app in sorted(p for p in worker.iterdir() if p.is_dir()):
                    for executor in sorted(p for p in app.iterdir() if p.is_dir()):
                        for name in ("stdout", "stderr"):
                            if (executor / name).is_file():
                                found.append(
                                    (f"executor/{app.name}/{executor.name}/{name}", executor / name)
                                )
        if lay.init_logs.is_dir():
            node = f"{cluster_id}_{self.bind}"
            for log in sorted(lay.init_logs.iterdir()):
                found.append((f"init_scripts/{node}/{log.name}", log))
        return found

    async def forget(self, cluster_id: str) -> None:
        """Delete a cluster's folder (permanent delete), once its processes are gone."""
        await asyncio.to_thread(shutil.rmtree, self.layout(cluster_id).root, True)

    # -- warm instances (instance pools) -----------------------------------------------------

    async def start_instance(self, instance: InstanceSpec, reporter: Reporter) -> RuntimeHandle:
        """A warm instance: a single-node driver runtime (JVM up, SparkSession created and
        warmed) started in its own folder, named by the instance id, before any cluster."""
        from kiln.compute.node_types import NodeTypeCatalogue
        from kiln.compute.spec import parse_spec

        raw = {
            "cluster_name": instance.instance_id,
            "spark_version": instance.spark_version,
            "node_type_id": instance.node_type_id,
            "num_workers": 0,
            "spark_conf": {"spark.databricks.cluster.profile": "singleNode"},
            "custom_tags": {"ResourceClass": "SingleNode"},
        }
        spec = parse_spec(raw, NodeTypeCatalogue.from_settings(self.settings), 0)
        launch = LaunchSpec(
            cluster_id=instance.instance_id,
            spec=spec,
            workers=0,
            environment=instance.environment,
            init_scripts=(),
            env={},
            spark_conf={},
            proxy_base=f"/driver-proxy/o/{self.context.settings.workspace_id}/{instance.instance_id}",
        )
        return await self.start(launch, reporter)

    async def attach(
        self, instance: RuntimeHandle, launch: LaunchSpec, reporter: Reporter
    ) -> RuntimeHandle:
        """Hand a warm single-node instance to a cluster: its processes become the cluster's."""
        if launch.spec.standalone:
            raise LaunchFailed(
                TerminationCode.INSTANCE_POOL_CLUSTER_FAILURE,
                "A warm instance runs Spark in local mode; a cluster with workers starts cold.",
            )
        probe = await self.probe(instance)
        if not probe.responding:
            raise LaunchFailed(TerminationCode.INSTANCE_POOL_CLUSTER_FAILURE, probe.reason)
        handle = RuntimeHandle(
            backend=self.name,
            data=dict(instance.data),
            control_url=instance.control_url,
            secret_path=instance.secret_path,
            spark_app_id=instance.spark_app_id,
            spark_ui_port=instance.spark_ui_port,
        )
        await reporter.record(handle)
        return handle
