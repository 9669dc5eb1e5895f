"""The compute backend interface: what starts, watches and stops a cluster's processes.

A backend is a handful of async methods over plain data, so a multi-host backend (an agent on
each host starts workers) or a Kubernetes backend (Spark on Kubernetes) plugs in beside the
local one without touching the API layer or the supervisor. Backends are named in a registry
and imported only when first used.

Instance pools need a driver runtime that exists before its cluster: `start_instance` starts
one from an `InstanceSpec` (JVM up, Python imported, no cluster yet) and `attach` hands it to a
cluster. The cold path of `start` is the same two steps done at once.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from kiln.compute.spec import ClusterSpec, InitScript
from kiln.compute.states import EventType, TerminationCode
from kiln.errors import NotImplementedYet
from kiln.settings import KilnSettings

__all__ = [
    "BACKENDS",
    "BackendContext",
    "ClusterBackend",
    "DriverStatus",
    "InitScriptResult",
    "InstanceSpec",
    "LaunchFailed",
    "LaunchSpec",
    "Probe",
    "PythonEnvironment",
    "Reporter",
    "ResolvedInitScript",
    "RuntimeHandle",
    "load_backend",
]

# name -> "module:Class", imported on first use.
BACKENDS: dict[str, str] = {"local": "kiln.compute.backends.local:LocalBackend"}


@dataclass(frozen=True, slots=True)
class PythonEnvironment:
    """The Python a cluster's user code runs in: the driver's REPLs and every executor
    (`PYSPARK_PYTHON`), with the variables that go with it (a per-cluster venv's PATH...)."""

    python: str
    env: dict[str, str] = field(default_factory=dict)
    # Comma-list Spark settings the environment adds (spark.jars of jar libraries...),
    # appended to the user's own.
    spark_conf: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ResolvedInitScript:
    """An init script with its content fetched from Kiln's stores."""

    script: InitScript
    content: bytes


@dataclass(frozen=True, slots=True)
class InitScriptResult:
    """How one init script ended (`InitScriptInfoAndExecutionDetails`)."""

    script: InitScript
    status: str  # SUCCEEDED, FAILED_EXECUTION, FAILED_FETCH, SKIPPED
    seconds: int
    output: str = ""

    def wire(self) -> dict[str, Any]:
        """Databricks' event-details form."""
        out: dict[str, Any] = dict(self.script.wire())
        out.update(status=self.status, execution_duration_seconds=self.seconds)
        if self.status != "SUCCEEDED":
            out["error_message"] = self.output[-4000:]
            out["stderr"] = self.output[-4000:]
        return out


@dataclass(frozen=True, slots=True)
class InstanceSpec:
    """What a driver runtime is started with before (or without) a cluster: its size, the
    Spark it runs and its Python. Instance pools start these ahead of demand."""

    instance_id: str
    spark_version: str
    node_type_id: str
    environment: PythonEnvironment


@dataclass(frozen=True, slots=True)
class LaunchSpec:
    """Everything a backend needs to bring one cluster up."""

    cluster_id: str
    spec: ClusterSpec
    workers: int
    environment: PythonEnvironment
    init_scripts: tuple[ResolvedInitScript, ...]
    # spark_env_vars plus Databricks' DB_* variables.
    env: dict[str, str]
    # The user's spark_conf with Kiln's sizing defaults beneath it (never the managed keys).
    spark_conf: dict[str, str]
    # The UI's public prefix through the control plane, without the port
    # (`/driver-proxy/o/<workspace>/<cluster_id>`).
    proxy_base: str


@dataclass(slots=True)
class RuntimeHandle:
    """What a backend hands back for a started cluster; persisted in `cluster_runtimes`.

    `data` belongs to the backend (process ids with start times, ports); the rest is what the
    control plane uses whatever the backend.
    """

    backend: str
    data: dict[str, Any] = field(default_factory=dict)
    control_url: str | None = None
    secret_path: str | None = None
    spark_app_id: str | None = None
    spark_ui_port: int | None = None


@dataclass(frozen=True, slots=True)
class DriverStatus:
    """The driver runtime's answer to /status."""

    app_id: str | None
    ui_port: int | None
    spark_version: str | None
    executors: tuple[dict[str, Any], ...]
    active_jobs: int
    running_tasks: int
    pending_tasks: int
    last_activity: float | None  # epoch seconds

    @classmethod
    def of(cls, body: dict[str, Any]) -> DriverStatus:
        """Parse a /status body."""
        return cls(
            app_id=body.get("app_id"),
            ui_port=body.get("ui_port"),
            spark_version=body.get("spark_version"),
            executors=tuple(body.get("executors") or ()),
            active_jobs=int(body.get("active_jobs") or 0),
            running_tasks=int(body.get("running_tasks") or 0),
            pending_tasks=int(body.get("pending_tasks") or 0),
            last_activity=body.get("last_activity"),
        )


@dataclass(frozen=True, slots=True)
class Probe:
    """A health check of a running cluster."""

    # Whether the driver process still exists (it is the cluster's life).
    alive: bool
    # Whether the control endpoint answered.
    responding: bool
    status: DriverStatus | None = None
    # Why the driver is gone or silent, for events and termination reasons.
    reason: str = ""


class LaunchFailed(Exception):
    """A cluster could not be brought up; `code` becomes its termination reason."""

    def __init__(
        self,
        code: TerminationCode,
        message: str,
        *,
        init_scripts: tuple[InitScriptResult, ...] = (),
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.init_scripts = init_scripts


class Reporter(Protocol):
    """How a backend tells the control plane what it is doing, as it happens."""

    async def event(self, event_type: EventType, **details: Any) -> None:
        """Record a cluster event."""

    async def record(self, handle: RuntimeHandle) -> None:
        """Persist the handle: called as soon as a process exists, before anything waits."""


@dataclass(frozen=True, slots=True)
class BackendContext:
    """What every backend is built from."""

    settings: KilnSettings

    @property
    def clusters_dir(self) -> Path:
        """The local folder for cluster files (config, secrets, logs)."""
        return self.settings.clusters_dir


class ClusterBackend(ABC):
    """Starts, resizes, probes and stops the processes of clusters."""

    name: str = ""

    def __init__(self, context: BackendContext) -> None:
        self.context = context

    @abstractmethod
    async def start(self, launch: LaunchSpec, reporter: Reporter) -> RuntimeHandle:
        """Run init scripts, start Spark (master, workers, driver) and return once the
        driver answers with the expected executors. Raises LaunchFailed."""

    @abstractmethod
    async def resize(
        self, handle: RuntimeHandle, launch: LaunchSpec, workers: int, reporter: Reporter
    ) -> RuntimeHandle:
        """Add or remove workers of a running cluster."""

    def resizable(self, handle: RuntimeHandle, spec: ClusterSpec) -> bool:
        """Whether `resize` can bring the running processes to `spec`, or a restart is needed
        (e.g. Spark local mode cannot gain workers under a running driver)."""
        return True

    @abstractmethod
    async def stop(self, cluster_id: str, handle: RuntimeHandle | None) -> None:
        """Stop every process of the cluster (recorded or not); none may survive."""

    @abstractmethod
    async def probe(self, handle: RuntimeHandle) -> Probe:
        """Is the driver alive, does it answer, and what does Spark report."""

    @abstractmethod
    async def adopt(self, handle: RuntimeHandle) -> bool:
        """After a control-plane restart: are the recorded processes still the cluster's own
        (same PIDs and start times) and does the driver answer?"""

    async def smoke_job(self, handle: RuntimeHandle, tasks: int, task_ms: int) -> dict[str, Any]:
        """Run a small Spark job on the cluster (health checks, benchmarks)."""
        raise NotImplementedYet(f"The {self.name} backend cannot run smoke jobs.")

    def proxy_ports(self, handle: RuntimeHandle) -> set[int]:
        """The HTTP ports of a running cluster the control plane may proxy to (the Spark UI)."""
        return {handle.spark_ui_port} if handle.spark_ui_port else set()

    def log_files(self, cluster_id: str, handle: RuntimeHandle | None) -> list[tuple[str, Path]]:
        """The cluster's log files as (path under `<destination>/<cluster_id>/`, local file)."""
        return []

    async def forget(self, cluster_id: str) -> None:
        """Drop whatever the backend keeps for a permanently deleted cluster (its files)."""
        return None

    async def start_instance(self, instance: InstanceSpec, reporter: Reporter) -> RuntimeHandle:
        """Start a driver runtime ahead of any cluster (a warm pool instance)."""
        raise NotImplementedYet(f"The {self.name} backend has no warm instances.")

    async def attach(
        self, instance: RuntimeHandle, launch: LaunchSpec, reporter: Reporter
    ) -> RuntimeHandle:
        """Hand a warm instance to a cluster."""
        raise NotImplementedYet(f"The {self.name} backend has no warm instances.")

    async def close(self) -> None:
        """Release what the backend holds (clients, reapers); clusters are stopped separately."""
        return None


def load_backend(name: str, context: BackendContext) -> ClusterBackend:
    """The backend registered as `name`, imported now."""
    target = BACKENDS.get(name)
    if target is None:
        raise ValueError(f"unknown compute backend {name!r}; known: {', '.join(BACKENDS)}")
    module_name, _, class_name = target.partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    backend: ClusterBackend = cls(context)
    return backend
