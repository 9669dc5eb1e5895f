"""One served entity's scorer: its own process on 127.0.0.1 (see scorer_main).

The process scores with MLflow's own pyfunc scoring function (dataframe_split,
dataframe_records, instances and inputs, as `mlflow models serve`), loading the model version's
files straight from the DBFS root, with the interpreter of the model's environment (Kiln's own,
or a venv built for the model's requirements: see environments). It is started from the event
loop's thread with PR_SET_PDEATHSIG, so it dies with the server even if the server is killed;
its PID is also recorded in the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from kiln.ml.serving.http1 import Http1Pool
from kiln.ml.serving.online_store import ONLINE_STORE_ENV

__all__ = ["SCORER_MODULE", "Scorer", "ScorerFailed", "free_port", "start_scorer"]

_PR_SET_PDEATHSIG = 1
SCORER_MODULE = "kiln.ml.serving.scorer_main"
READY_TIMEOUT_S = 180.0


class ScorerFailed(Exception):
    """The scorer process exited or never answered: the model did not load."""


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:
    # Runs in the child between fork and exec.
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Scorer:
    """A running scorer process."""

    name: str
    model_dir: str
    port: int
    process: asyncio.subprocess.Process
    log_path: Path
    started: float = field(default_factory=time.monotonic)
    pool: Http1Pool = field(init=False)

    def __post_init__(self) -> None:
        self.pool = Http1Pool(self.port)

    @property
    def pid(self) -> int:
        """The process id."""
        return self.process.pid

    @property
    def url(self) -> str:
        """Where it scores."""
        return f"http://127.0.0.1:{self.port}/invocations"

    def alive(self) -> bool:
        """Whether the process is still running."""
        return self.process.returncode is None

    async def stop(self, grace_s: float = 10.0) -> None:
        """SIGTERM, then SIGKILL if it does not exit in time."""
        self.pool.close()
        if self.process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.process.terminate()
        try:
            await asyncio.wait_for(self.process.wait(), grace_s)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            await self.process.wait()

    def failure_reason(self) -> str:
        """The last lines the process wrote (why the model failed to load)."""
        try:
            lines = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            lines = []
        errors = [ln for ln in lines if "Error" in ln or "Exception" in ln]
        tail = (errors or lines)[-3:]
        return " | ".join(tail)[-1000:] or "The scorer process exited."


async def _wait_ready(scorer: Scorer, wait_s: float) -> None:
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if not scorer.alive():
            raise ScorerFailed(scorer.failure_reason())
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", scorer.port)
        except OSError:
            await asyncio.sleep(0.1)
            continue
        try:
            writer.write(b"GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            await writer.drain()
            status = await reader.readline()
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        if status.split(b" ")[1:2] == [b"200"]:
            return
        await asyncio.sleep(0.1)
    await scorer.stop()
    raise ScorerFailed(f"The model did not load within {wait_s:.0f} s.")


async def start_scorer(
    name: str,
    model_dir: str,
    log_dir: Path,
    wait_s: float = READY_TIMEOUT_S,
    python: str = sys.executable,
    online_store: Path | None = None,
) -> Scorer:
    """Start a scorer for the model in `model_dir` with `python` and wait until it answers."""
    await asyncio.to_thread(log_dir.mkdir, parents=True, exist_ok=True)
    port = free_port()
    log_path = log_dir / f"{name}-{port}.log"
    env = dict(os.environ)
    env.pop("MLFLOW_TRACKING_URI", None)
    if online_store is not None:
        env[ONLINE_STORE_ENV] = str(online_store)
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            python,
            "-m",
            SCORER_MODULE,
            "--port",
            str(port),
            "--model",
            model_dir,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
            env=env,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )
    scorer = Scorer(name, model_dir, port, process, log_path)
    await _wait_ready(scorer, wait_s)
    return scorer
