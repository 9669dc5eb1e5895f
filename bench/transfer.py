"""Transfer benchmark: DBFS and Files API throughput on loopback, beside same-run baselines.

Figures (MB/s = 10^6 bytes/s, median of a few runs, target >= 100 MB/s each):
- databricks-sdk `w.dbfs.upload` / `w.dbfs.download` (1 MiB base64 blocks, one request each),
- Files API single-shot PUT and streamed GET with plain `requests`,
- databricks-sdk `w.files.upload` (multipart handshake, parallel parts) / `w.files.download`,
- the legacy CLI's `fs cp` (one multipart `dbfs/put`).

Baselines measured in the same run: the same bytes through a bare loopback socket;
`shutil.copyfile` on the disk that holds the DBFS root; and, for the SDK's DBFS paths, the
SDK's own client-side work alone (base64 + JSON per 1 MiB block, no server at all), which no
server can beat: a DBFS figure is judged beside that ceiling as well as the target.

Run with `.venv/bin/python -m bench.transfer` (also part of `make bench`). Set
KILN_BENCH_TRANSFER_MB to change the payload size (64 MiB by default).
"""

from __future__ import annotations

import base64
import http.client
import io
import json
import os
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pybase64

REPO = Path(__file__).resolve().parent.parent
TARGET_MBPS = 100.0
ROUNDS = 3
MIB = 1024 * 1024


class _Sink(io.RawIOBase):
    """A writable that counts bytes and keeps none."""

    def __init__(self) -> None:
        self.count = 0

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        n = len(b)
        self.count += n
        return n


class _RawClient:
    """JSON calls over one keep-alive http.client connection, bodies sent as given."""

    def __init__(self, url: str, token: str) -> None:
        parts = urlsplit(url)
        self.conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port)
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def call(self, method: str, path: str, body: bytes | None = None) -> Any:
        self.conn.request(method, path, body=body, headers=self.headers)
        response = self.conn.getresponse()
        data = response.read()
        if response.status != 200:
            raise RuntimeError(f"{method} {path}: {response.status} {data[:200]!r}")
        return json.loads(data)


def _mbps(size: int, run: Callable[[], object], rounds: int = ROUNDS) -> float:
    """Median MB/s of `rounds` timed runs."""
    rates = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        run()
        rates.append(size / (time.perf_counter() - t0) / 1e6)
    return statistics.median(rates)


def socket_baseline(payload: bytes) -> float:
    """The payload through a bare loopback TCP socket, 1 MiB sends and receives."""

    def once() -> None:
        with socket.create_server(("127.0.0.1", 0)) as server:
            port = server.getsockname()[1]
            received = [0]

            def serve() -> None:
                conn, _ = server.accept()
                with conn:
                    buf = bytearray(MIB)
                    while n := conn.recv_into(buf):
                        received[0] += n

            thread = threading.Thread(target=serve)
            thread.start()
            view = memoryview(payload)
            with socket.create_connection(("127.0.0.1", port)) as client:
                for i in range(0, len(view), MIB):
                    client.sendall(view[i : i + MIB])
            thread.join()
            assert received[0] == len(payload)

    return _mbps(len(payload), once)


def disk_baseline(source: Path, folder: Path) -> float:
    """`shutil.copyfile` of the payload within the folder that holds the DBFS root."""
    target = folder / "copy.bin"
    # No fsync: the server's writes land in the page cache too.
    rate = _mbps(source.stat().st_size, lambda: shutil.copyfile(source, target))
    target.unlink()
    return rate


def sdk_client_ceilings(payload: bytes) -> tuple[float, float]:
    """(upload, download) MB/s of the SDK's per-block client work alone, with no server.

    Upload: base64-encode each 1 MiB block and JSON-encode the add-block body, as
    `_DbfsIO.write` and the API client do. Download: JSON-decode a read answer and
    base64-decode its data, as `_DbfsIO.read` does.
    """

    def encode_all() -> None:
        for i in range(0, len(payload), MIB):
            data = base64.b64encode(payload[i : i + MIB]).decode()
            json.dumps({"handle": 1, "data": data}, allow_nan=False)

    answer = json.dumps(
        {"bytes_read": MIB, "data": base64.b64encode(payload[:MIB]).decode()}
    ).encode()

    def decode_all() -> None:
        for _ in range(0, len(payload), MIB):
            base64.b64decode(json.loads(answer)["data"])

    return _mbps(len(payload), encode_all), _mbps(len(payload), decode_all)


def main() -> None:
    """Start a server, move the payload through every path, print rates beside baselines."""
    sys.path.insert(0, str(REPO / "tests"))
    import requests
    from databricks.sdk import WorkspaceClient
    from databricks_cli.sdk.api_client import ApiClient
    from databricks_cli.sdk.service import DbfsService

    from support import start_server, stop_server_process

    size = int(os.environ.get("KILN_BENCH_TRANSFER_MB", "64")) * MIB
    payload = os.urandom(size)
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "payload.bin"
        source.write_bytes(payload)
        server = start_server(Path(tmp) / "data")
        try:
            w = WorkspaceClient(host=server.url, token=server.token, auth_type="pat")
            http = requests.Session()
            http.headers["Authorization"] = f"Bearer {server.token}"
            files_url = f"{server.url}/api/2.0/fs/files/bench"
            cli = ApiClient(host=server.url, token=server.token)
            cli.url = f"{server.url}/api/"  # the legacy CLI drops the port
            w.dbfs.upload("/bench/warmup", io.BytesIO(b"x"), overwrite=True)  # connections up

            def dbfs_up() -> None:
                w.dbfs.upload("/bench/sdk.bin", io.BytesIO(payload), overwrite=True)

            def dbfs_down() -> None:
                sink = _Sink()
                with w.dbfs.download("/bench/sdk.bin") as f:
                    shutil.copyfileobj(f, sink, MIB)
                assert sink.count == size

            def files_put() -> None:
                with open(source, "rb") as f:
                    http.put(f"{files_url}/raw.bin", data=f).raise_for_status()

            def files_get() -> None:
                with http.get(f"{files_url}/raw.bin", stream=True) as r:
                    r.raise_for_status()
                    assert sum(len(c) for c in r.iter_content(4 * MIB)) == size

            def sdk_files_up() -> None:
                w.files.upload("/bench/sdk-files.bin", io.BytesIO(payload))

            def sdk_files_down() -> None:
                sink = _Sink()
                contents = w.files.download("/bench/sdk-files.bin").contents
                shutil.copyfileobj(contents, sink, 4 * MIB)
                assert sink.count == size

            def cli_put() -> None:
                with open(source, "rb") as f:
                    cli.perform_query(
                        "POST",
                        "/dbfs/put",
                        data={"path": "/bench/cli.bin", "overwrite": True},
                        headers={"Content-Type": None},
                        files={"file": ("payload.bin", f, "multipart/form-data")},
                    )

            # The server's side of the DBFS streaming API, with a client that adds as little as
            # possible: request bodies serialized once up front, answers read whole off one
            # keep-alive connection and decoded with pybase64 (requests' json= re-escapes 1.4 MB
            # and reads in 10 KB chunks, and the standard library's base64 takes 5 ms a MiB
            # here: they capped these figures at the client, not the server).
            bodies = [
                b'"' + base64.b64encode(payload[i : i + MIB]) + b'"' for i in range(0, size, MIB)
            ]
            raw = _RawClient(server.url, server.token)

            def dbfs_blocks_up() -> None:
                handle = raw.call(
                    "POST", "/api/2.0/dbfs/create", b'{"path": "/bench/raw.bin", "overwrite": true}'
                )["handle"]
                prefix = b'{"handle": %d, "data": ' % handle
                for body in bodies:
                    raw.call("POST", "/api/2.0/dbfs/add-block", prefix + body + b"}")
                raw.call("POST", "/api/2.0/dbfs/close", b'{"handle": %d}' % handle)

            def dbfs_reads_down() -> None:
                got = 0
                while got < size:
                    answer = raw.call(
                        "GET", f"/api/2.0/dbfs/read?path=/bench/raw.bin&offset={got}&length={MIB}"
                    )
                    got += len(pybase64.b64decode(answer["data"]))

            figures = [
                ("DBFS add-block, 1 MiB blocks (lean client)", _mbps(size, dbfs_blocks_up), ""),
                ("DBFS read, 1 MiB blocks (lean client)", _mbps(size, dbfs_reads_down), ""),
                ("sdk w.dbfs.upload (1 MiB base64 blocks)", _mbps(size, dbfs_up), "up"),
                ("sdk w.dbfs.download (1 MiB reads)", _mbps(size, dbfs_down), "down"),
                ("Files API PUT, single shot (requests)", _mbps(size, files_put), ""),
                ("Files API GET, streamed (requests)", _mbps(size, files_get), ""),
                ("sdk w.files.upload (multipart handshake)", _mbps(size, sdk_files_up), ""),
                ("sdk w.files.download", _mbps(size, sdk_files_down), ""),
                ("legacy CLI fs cp (multipart dbfs/put)", _mbps(size, cli_put), ""),
            ]
            status = DbfsService(cli).get_status("/bench/cli.bin")
            assert status["file_size"] == size
            socket_rate = socket_baseline(payload)
            disk_rate = disk_baseline(source, server.data_dir)
            ceiling = dict(zip(("up", "down"), sdk_client_ceilings(payload), strict=True))
        finally:
            stop_server_process(server.process)
    print(f"\ntransfer of {size // MIB} MiB on loopback, median of {ROUNDS} runs")
    for name, rate in [
        ("baseline: bare loopback socket", socket_rate),
        ("baseline: shutil.copyfile, same disk", disk_rate),
        ("ceiling: sdk dbfs upload client work alone", ceiling["up"]),
        ("ceiling: sdk dbfs download client work alone", ceiling["down"]),
    ]:
        print(f"{name:<46} {rate:>7.0f} MB/s")
    for name, rate, kind in figures:
        beside = f"{rate / socket_rate:>4.0%} of socket"
        if kind:
            beside += f", {rate / ceiling[kind]:>4.0%} of the sdk's client ceiling"
        verdict = "PASS" if rate >= TARGET_MBPS else "FAIL"
        print(f"{name:<46} {rate:>7.0f} MB/s   {beside:<48} target >= 100: {verdict}")


if __name__ == "__main__":
    main()
