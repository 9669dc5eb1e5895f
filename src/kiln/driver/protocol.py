"""What the control plane and a driver runtime agree on: the config file, the state file and
the control endpoint's paths. Plain data only, so both sides import it cheaply."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

__all__ = [
    "AUTH_HEADER",
    "MAX_CONTEXTS",
    "PATH_COMMAND_CANCEL",
    "PATH_COMMAND_EXECUTE",
    "PATH_COMMAND_STATUS",
    "PATH_CONTEXT_CREATE",
    "PATH_CONTEXT_DESTROY",
    "PATH_CONTEXT_LIST",
    "PATH_CONTEXT_STATUS",
    "PATH_HEALTH",
    "PATH_SHUTDOWN",
    "PATH_SMOKE_JOB",
    "PATH_STATUS",
    "DriverConfig",
    "DriverState",
    "read_state_file",
    "write_json_atomic",
]

AUTH_HEADER = "Authorization"
PATH_HEALTH = "/health"
PATH_STATUS = "/status"
PATH_SMOKE_JOB = "/smoke-job"
PATH_SHUTDOWN = "/shutdown"
# Execution contexts and their commands (the Command Execution API 1.2, behind the control plane).
PATH_CONTEXT_CREATE = "/contexts/create"
PATH_CONTEXT_STATUS = "/contexts/status"
PATH_CONTEXT_DESTROY = "/contexts/destroy"
PATH_CONTEXT_LIST = "/contexts/list"
PATH_COMMAND_EXECUTE = "/commands/execute"
PATH_COMMAND_STATUS = "/commands/status"
PATH_COMMAND_CANCEL = "/commands/cancel"
# Databricks' limit of execution contexts per cluster.
MAX_CONTEXTS = 145


class DriverState(StrEnum):
    """Where a driver runtime is (written to its state file and returned by /health)."""

    STARTING = "STARTING"
    RUNNING = "RUNNING"
    FAILED = "FAILED"
    STOPPING = "STOPPING"


@dataclass
class DriverConfig:
    """Everything a driver runtime needs, written by the backend as a 0600 JSON file."""

    cluster_id: str
    app_name: str
    # `local[N]` for a single-node cluster, `spark://host:port` with workers.
    master: str
    bind_host: str
    # A JSON file (0600) holding {"spark": ..., "control": ...}: Spark's authentication
    # secret and the control endpoint's bearer secret. Never on a command line.
    secrets_file: str
    # Where the runtime publishes its state (pid, control port, Spark app id, UI port).
    state_file: str
    control_port: int = 0
    # Applied when the driver JVM is launched (memory, Java options): no secrets here.
    launch_conf: dict[str, str] = field(default_factory=dict)
    # Everything else, given to the SparkContext.
    spark_conf: dict[str, str] = field(default_factory=dict)
    # Executors the cluster should have once up (0 for local mode).
    expected_executors: int = 0
    # Run one small job before reporting RUNNING, so a client's first job finds Spark warm.
    warmup: bool = True
    # How execution contexts reach Spark when the cluster is known: `classic` (py4j, dedicated
    # and no-isolation clusters) or `connect` (Spark Connect, standard clusters). The runtime
    # then has a warm REPL of that mode ready before the first context; empty: learnt from
    # the first context (pool instances start before their cluster is known).
    access_mode: str = ""

    def write(self, path: Path) -> None:
        """Write the config (mode 0600)."""
        write_json_atomic(path, asdict(self))

    @classmethod
    def read(cls, path: Path) -> DriverConfig:
        """Read a config file."""
        return cls(**json.loads(path.read_text()))


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write JSON to `path` (mode 0600) so a reader sees the old file or the new one, never half."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f)
    os.replace(tmp, path)


def read_state_file(path: Path) -> dict[str, Any] | None:
    """A runtime's published state, or None while it has written none."""
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None
    return data if isinstance(data, dict) else None
