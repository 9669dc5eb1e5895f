"""A throwaway PostgreSQL cluster built from the machine's own server binaries, for tests.

`initdb` and `postgres` refuse to run as root, so when the tests run as root (as CI does) the
cluster belongs to an unprivileged account (`postgres` if it exists, else `nobody`) and every
PostgreSQL binary is started as that account through `subprocess`'s `user=`/`group=` (no
sudo, su or PAM needed). The cluster listens on 127.0.0.1 only, on a free port, with its unix
socket inside its own temp dir, and is stopped with `pg_ctl stop` (then by its PID if need be).
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from support import free_port

__all__ = ["NO_POSTGRES", "PostgresCluster", "find_pg_bin", "running_postgres"]

NO_POSTGRES = (
    "no PostgreSQL server binaries (initdb, pg_ctl, postgres) on PATH, under "
    "/usr/lib/postgresql/*/bin or in $KILN_TEST_PG_BIN"
)
_NEEDED = ("initdb", "pg_ctl", "postgres")
_SUPERUSER = "kiln"


def _has_server(bin_dir: Path) -> bool:
    return all(os.access(bin_dir / name, os.X_OK) for name in _NEEDED)


def find_pg_bin() -> Path | None:
    """The directory holding initdb, pg_ctl and postgres, or None when this machine has none."""
    candidates: list[Path] = []
    if override := os.environ.get("KILN_TEST_PG_BIN"):
        candidates.append(Path(override))
    if on_path := shutil.which("pg_ctl"):
        # Resolve symlinks (/usr/local/bin/pg_ctl -> /usr/lib/postgresql/15/bin/pg_ctl): pg_ctl
        # looks for `postgres` beside its real path.
        candidates.append(Path(on_path).resolve().parent)
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    candidates.extend(versions)
    return next((c for c in candidates if _has_server(c)), None)


def _unprivileged_account() -> tuple[int, int] | None:
    """(uid, gid) to run PostgreSQL as when we are root; None when we are not."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        return entry.pw_uid, entry.pw_gid
    raise RuntimeError("running as root and there is no 'postgres' or 'nobody' account")


@dataclass
class PostgresCluster:
    """A running cluster: where it lives, how to reach it, how to stop it."""

    bin_dir: Path
    root: Path
    port: int
    account: tuple[int, int] | None

    @property
    def data_dir(self) -> Path:
        """PGDATA."""
        return self.root / "data"

    @property
    def log_path(self) -> Path:
        """The server's log file."""
        return self.root / "server.log"

    def url(self, database: str = "postgres") -> str:
        """A plain `postgresql://` URL of one of the cluster's databases."""
        return f"postgresql://{_SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str | None = None) -> str:
        """Create an empty database (a fresh name unless given) and return its URL."""
        import psycopg

        name = name or f"kiln_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def pid(self) -> int | None:
        """The postmaster's PID from its pid file, or None when it is not running."""
        try:
            return int((self.data_dir / "postmaster.pid").read_text().split()[0])
        except (FileNotFoundError, IndexError, ValueError):
            return None

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run one of the cluster's binaries as the cluster's owner."""
        kwargs: dict[str, Any] = {}
        if self.account is not None:
            uid, gid = self.account
            kwargs.update(user=uid, group=gid, extra_groups=[])
        return subprocess.run(
            [str(self.bin_dir / args[0]), *args[1:]],
            # The owner may not be allowed into the caller's working directory.
            cwd=self.root,
            env={**os.environ, "LC_ALL": "C", "LANG": "C"},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            **kwargs,
        )

    def start(self) -> None:
        """initdb (trust auth on loopback) and start the server; raise with its log on failure."""
        init = self.run(
            "initdb",
            "-D",
            str(self.data_dir),
            "-U",
            _SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        )
        if init.returncode != 0:
            raise RuntimeError(f"initdb failed ({init.returncode}): {init.stderr}")
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} "
            "-c unix_socket_permissions=0700 -c fsync=off -c synchronous_commit=off "
            "-c full_page_writes=off -c max_connections=200"
        )
        started = self.run(
            "pg_ctl", "-D", str(self.data_dir), "-l", str(self.log_path), "-o", options, "-w",
            "-t", "60", "start",
        )  # fmt: skip
        if started.returncode != 0:
            log = self.log_path.read_text() if self.log_path.exists() else ""
            raise RuntimeError(f"pg_ctl start failed: {started.stdout}{started.stderr}\n{log}")

    def stop(self) -> None:
        """`pg_ctl stop -m fast`; if the postmaster is still there, kill it by its PID."""
        pid = self.pid()
        if pid is None:
            return
        self.run("pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "-t", "30", "stop")
        deadline = time.monotonic() + 10
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@contextmanager
def running_postgres(bin_dir: Path) -> Iterator[PostgresCluster]:
    """A fresh cluster from the binaries in `bin_dir`, stopped and deleted on exit."""
    account = _unprivileged_account()
    # Under /tmp when another account owns the cluster: it must be able to reach its files,
    # and $TMPDIR may sit under a directory only we can enter.
    root = Path(tempfile.mkdtemp(prefix="kiln-pg-", dir="/tmp" if account else None))
    try:
        if account is not None:
            os.chown(root, *account)
        cluster = PostgresCluster(bin_dir=bin_dir, root=root, port=free_port(), account=account)
        try:
            cluster.start()
            yield cluster
        finally:
            cluster.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)
