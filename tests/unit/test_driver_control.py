"""The driver's control endpoint on its own: routes, the secret, keep-alive and the limits
on a request's header."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from kiln.driver.control import ControlServer, HttpError

SECRET = "s3cret"


@pytest.fixture(scope="module")
def control() -> Iterator[ControlServer]:
    server = ControlServer("127.0.0.1", 0, SECRET)

    def echo(body: dict[str, Any], query: dict[str, str]) -> dict[str, Any]:
        if body.get("refuse"):
            raise HttpError(400, "INVALID_PARAMETER_VALUE", "refused")
        return {"body": body, "query": query}

    server.route("POST", "/echo", echo)
    server.route("GET", "/echo", echo)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _raw(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        chunks = []
        # A refused request may be closed with some of it unread: a reset after the answer.
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks)


def test_routes_secret_and_keep_alive(control: ControlServer) -> None:
    auth = {"authorization": f"Bearer {SECRET}"}
    with httpx.Client(base_url=f"http://127.0.0.1:{control.port}", timeout=10) as client:
        r = client.post("/echo", json={"a": 1}, params={"x": "2"}, headers=auth)
        assert r.status_code == 200
        assert r.json() == {"body": {"a": 1}, "query": {"x": "2"}}
        # The same connection serves the next requests; header names are case-insensitive.
        r = client.get("/echo", headers={"AUTHORIZATION": f"Bearer {SECRET}"})
        assert r.status_code == 200 and r.json()["body"] == {}
        r = client.post("/echo", json={"refuse": True}, headers=auth)
        assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
        assert client.get("/echo").status_code == 401
        assert client.get("/echo", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert client.get("/nowhere", headers=auth).status_code == 404
        r = client.post("/echo", content=b"[1]", headers=auth)
        assert r.status_code == 400 and r.json()["error_code"] == "MALFORMED_REQUEST"


def test_connection_close_and_http_1_0(control: ControlServer) -> None:
    auth = f"Authorization: Bearer {SECRET}\r\n"
    answer = _raw(control.port, f"GET /echo HTTP/1.1\r\n{auth}Connection: close\r\n\r\n".encode())
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b'"query": {}}')
    answer = _raw(
        control.port, f"GET /echo HTTP/1.0\r\nAuthorization: Bearer {SECRET}\r\n\r\n".encode()
    )
    assert answer.startswith(b"HTTP/1.1 200")


def test_malformed_requests_are_refused(control: ControlServer) -> None:
    # A one-word request line reads as HTTP/0.9, whose answers have no status line.
    assert b"400 - Bad request syntax" in _raw(control.port, b"NONSENSE\r\n\r\n")
    assert b"505 - Cannot fulfill request" in _raw(control.port, b"GET /echo HTTP/2.0\r\n\r\n")
    many = b"".join(b"X-%d: 1\r\n" % i for i in range(101))
    assert _raw(control.port, b"GET /echo HTTP/1.1\r\n" + many + b"\r\n").startswith(
        b"HTTP/1.1 431"
    )
    long = b"X-Long: " + b"a" * 70000 + b"\r\n"
    assert _raw(control.port, b"GET /echo HTTP/1.1\r\n" + long + b"\r\n").startswith(
        b"HTTP/1.1 431"
    )
