"""The legacy databricks-cli 0.18 in tests: it drops the port from its host, so Kiln serves it
on port 80 of a second loopback address."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

# One loopback address per xdist worker ("gw0" -> 127.0.0.2, "gw1" -> 127.0.0.3): the two legacy
# CLI modules may run at once on different workers, each needing port 80.
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
HOST = f"127.0.0.{2 + int(_WORKER or 0)}"
PORT = 80
CLI = str(Path(sys.executable).with_name("databricks"))


def bind_problem() -> str | None:
    """Why HOST:PORT cannot be served here (the reason to skip), or None."""
    try:
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((HOST, PORT))
    except OSError as exc:
        return f"cannot bind {HOST}:{PORT} for the legacy CLI test ({exc}); run the suite as root"
    return None


def cli_runner(home: Path, token: str) -> Callable[..., str]:
    """Run `databricks <args>` as a fresh user with `token`; its stdout (a failure asserts)."""
    env = {
        **os.environ,
        "HOME": str(home),
        # Deliberately with a port: the CLI drops it, so Kiln must be on port 80.
        "DATABRICKS_HOST": f"http://{HOST}:8080",
        "DATABRICKS_TOKEN": token,
    }
    env.pop("DATABRICKS_CONFIG_PROFILE", None)

    def run(*args: str) -> str:
        proc = subprocess.run([CLI, *args], env=env, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, f"databricks {' '.join(args)}: {proc.stdout}\n{proc.stderr}"
        return proc.stdout

    return run
