"""Local processes a cluster owns: started in their own session, identified by PID *and* start
time (a recycled PID is never mistaken for ours), tagged through their environment so that
stray descendants are found too, and stopped with SIGTERM, a grace period, then SIGKILL.

Everything here blocks; the backend calls it through `asyncio.to_thread`.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil

__all__ = [
    "HOME_TAG",
    "ProcessRecord",
    "Reaper",
    "spawn",
    "stop_processes",
    "tagged_processes",
    "verified",
]

# Every process of a cluster carries KILN_CLUSTER_HOME=<the cluster's folder>: unique per data
# dir and cluster, inherited by the driver's JVM, executors and Python workers alike.
HOME_TAG = "KILN_CLUSTER_HOME"
# psutil's start times are derived from boot time and clock ticks; allow for rounding.
_START_TIME_SLACK = 0.05


@dataclass(frozen=True, slots=True)
class ProcessRecord:
    """One process the cluster started: what the store records about it."""

    role: str  # driver, master, worker
    pid: int
    create_time: float
    index: int = 0

    def to_json(self) -> dict[str, Any]:
        """The stored form."""
        return asdict(self)

    @classmethod
    def of(cls, data: dict[str, Any]) -> ProcessRecord:
        """Read the stored form."""
        return cls(
            role=str(data["role"]),
            pid=int(data["pid"]),
            create_time=float(data["create_time"]),
            index=int(data.get("index", 0)),
        )


class Reaper:
    """Holds the Popen objects of children this control plane started, to reap them (a child
    that exits would otherwise linger as a zombie and look alive)."""

    def __init__(self) -> None:
        self._children: dict[int, subprocess.Popen[bytes]] = {}

    def add(self, proc: subprocess.Popen[bytes]) -> None:
        """Track a child."""
        self._children[proc.pid] = proc

    def reap(self) -> None:
        """Collect every exited child."""
        for pid, proc in list(self._children.items()):
            if proc.poll() is not None:
                del self._children[pid]

    def exit_code(self, pid: int) -> int | None:
        """The exit status of a child that has exited (None if running or not ours)."""
        proc = self._children.get(pid)
        return None if proc is None else proc.poll()


def spawn(
    role: str,
    argv: list[str],
    *,
    env: dict[str, str],
    log_path: Path,
    cwd: Path,
    reaper: Reaper,
    index: int = 0,
    err_path: Path | None = None,
) -> ProcessRecord:
    """Start a process in its own session (it outlives the control plane), output to files
    (never pipes: the process must not depend on the control plane reading them)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as files:
        out = files.enter_context(open(log_path, "ab"))
        err: Any = (
            subprocess.STDOUT if err_path is None else files.enter_context(open(err_path, "ab"))
        )
        proc = subprocess.Popen(
            argv,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
            close_fds=True,
        )
    reaper.add(proc)
    try:
        create_time = psutil.Process(proc.pid).create_time()
    except psutil.Error:
        create_time = 0.0
    return ProcessRecord(role, proc.pid, create_time, index)


def verified(record: ProcessRecord) -> psutil.Process | None:
    """The live process a record names, or None if it is gone (or the PID was reused)."""
    try:
        proc = psutil.Process(record.pid)
        if abs(proc.create_time() - record.create_time) > _START_TIME_SLACK:
            return None
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return proc
    except psutil.Error:
        return None


def tagged_processes(home: str) -> list[psutil.Process]:
    """Every live process carrying this cluster's tag, wherever it was started from."""
    found: list[psutil.Process] = []
    me = os.getpid()
    for proc in psutil.process_iter():
        if proc.pid == me:
            continue
        try:
            if proc.environ().get(HOME_TAG) == home and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except psutil.Error:
            continue
    return found


def _with_descendants(procs: Iterable[psutil.Process]) -> dict[int, psutil.Process]:
    out: dict[int, psutil.Process] = {}
    for proc in procs:
        out[proc.pid] = proc
        with contextlib.suppress(psutil.Error):
            for child in proc.children(recursive=True):
                out[child.pid] = child
    return out


def _group_members(groups: set[int]) -> list[psutil.Process]:
    found: list[psutil.Process] = []
    if not groups:
        return found
    for proc in psutil.process_iter():
        with contextlib.suppress(OSError, psutil.Error):
            if os.getpgid(proc.pid) in groups and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
    return found


def _alive(proc: psutil.Process) -> bool:
    try:
        return bool(proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


# Standalone daemons hold no state worth a graceful stop, and a worker that is still alive
# while its executors die is asked to launch replacements: they go first, with SIGKILL.
_KILL_FIRST = frozenset({"master", "worker"})


def stop_processes(
    records: Iterable[ProcessRecord], home: str | None, *, grace: float, reaper: Reaper
) -> int:
    """Stop a cluster's processes: recorded ones, their process groups and descendants, and
    anything tagged with `home`. Daemons get SIGKILL at once, the rest SIGTERM, then SIGKILL
    after `grace` seconds; the sweep repeats until nothing is left. Returns how many."""
    records = list(records)
    leaders = {r.pid: (r, p) for r in records if (p := verified(r)) is not None}
    groups: set[int] = set()
    for pid in leaders:
        with contextlib.suppress(OSError):
            if os.getpgid(pid) == pid:
                groups.add(pid)
    me = os.getpid()
    stopped: set[int] = set()
    for _ in range(4):
        targets = _with_descendants(p for _, p in leaders.values())
        targets.update(_with_descendants(_group_members(groups)))
        if home is not None:
            targets.update(_with_descendants(tagged_processes(home)))
        targets.pop(me, None)
        targets = {pid: p for pid, p in targets.items() if _alive(p)}
        if not targets:
            break
        for pid, proc in targets.items():
            record = leaders.get(pid, (None, None))[0]
            with contextlib.suppress(psutil.Error):
                if record is not None and record.role in _KILL_FIRST:
                    proc.kill()
                else:
                    proc.terminate()
        _, alive = psutil.wait_procs(list(targets.values()), timeout=grace)
        for proc in alive:
            with contextlib.suppress(psutil.Error):
                proc.kill()
        if alive:
            psutil.wait_procs(alive, timeout=10)
        stopped.update(targets)
        leaders = {}
        reaper.reap()
    return len(stopped)
