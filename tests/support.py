"""Test support: starting and stopping Kiln servers, and error-body assertions."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
KILN = [sys.executable, "-m", "kiln"]


@dataclass
class Server:
    """A running `kiln up` process."""

    url: str
    token: str
    data_dir: Path
    process: subprocess.Popen[bytes]
    log_path: Path

    def client(self, token: str | None = None) -> httpx.Client:
        """An HTTP client authenticated as the admin (or with `token`)."""
        headers = {"Authorization": f"Bearer {token or self.token}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def start_server(
    data_dir: Path,
    host: str = "127.0.0.1",
    port: int | None = None,
    env: dict[str, str] | None = None,
) -> Server:
    """Start `kiln up` and wait until /health answers 200."""
    port = port or free_port(host)
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir.parent / f"{data_dir.name}-server.log"
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [*KILN, "up", "--host", host, "--port", str(port), "--data-dir", str(data_dir)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            cwd=REPO,
        )
    url = f"http://{host}:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"kiln up exited with {proc.returncode}: {log_path.read_text()}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    else:
        stop_server_process(proc)
        raise RuntimeError(f"kiln up did not become healthy: {log_path.read_text()}")
    token = (data_dir / "admin-token").read_text().strip()
    return Server(url=url, token=token, data_dir=data_dir, process=proc, log_path=log_path)


def stop_server_process(proc: subprocess.Popen[bytes]) -> int:
    """SIGTERM the server by its PID; SIGKILL if it does not stop in time."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    return proc.returncode


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, str]:
    """Assert a Databricks-style error body with this status and error_code."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) >= {"error_code", "message"}, body
    assert body["error_code"] == code, body
    assert body["message"], body
    return body  # type: ignore[no-any-return]
