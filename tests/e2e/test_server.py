"""The server's edge: authentication, framing, limits, errors, discovery and lifecycle."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from support import Server, assert_error, start_server, stop_server_process


def test_health_and_discovery_need_no_token(server: Server) -> None:
    assert httpx.get(f"{server.url}/health").status_code == 200
    r = httpx.get(f"{server.url}/.well-known/databricks-config")
    assert r.status_code == 200 and "workspace_id" in r.json()


@pytest.mark.parametrize(
    "path",
    [
        "/api/2.0/preview/scim/v2/Me",
        "/api/2.0/token/list",
        "/api/2.0/workspace/list?path=/",
        "/api/2.0/dbfs/list?path=/",
        "/api/2.0/secrets/scopes/list",
        "/openapi.json",
        "/api/2.0/no-such-endpoint",
        "/api/",
        "/assets-not-the-ui/x",
    ],
)
def test_everything_else_needs_a_token(server: Server, path: str) -> None:
    assert_error(httpx.get(server.url + path), 401, "UNAUTHENTICATED")


@pytest.mark.parametrize(
    "header",
    ["Bearer dapi0000", "Bearer " + "dapi" + "0" * 48, "Basic YWRtaW46cGFzcw==", "Bearer", "token"],
)
def test_invalid_tokens_are_401(server: Server, header: str) -> None:
    r = httpx.get(f"{server.url}/api/2.0/token/list", headers={"Authorization": header})
    assert_error(r, 401, "UNAUTHENTICATED")


def test_forged_secret_for_real_token_id(server: Server) -> None:
    forged = server.token[:20] + ("0" if server.token[20] != "0" else "1") + server.token[21:]
    r = httpx.get(f"{server.url}/api/2.0/token/list", headers={"Authorization": f"Bearer {forged}"})
    assert_error(r, 401, "UNAUTHENTICATED")


def test_openapi_document(admin: httpx.Client) -> None:
    doc = admin.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    for path in ("/api/2.0/token/create", "/api/2.0/preview/scim/v2/Me"):
        assert path in doc["paths"]
    # Alias prefixes are listed too, with operation ids of their own.
    assert (
        doc["paths"]["/api/2.0/scim/v2/Users/{id}"]["get"]["operationId"]
        != (doc["paths"]["/api/2.0/preview/scim/v2/Users/{id}"]["get"]["operationId"])
    )


def test_alias_prefixes_reach_the_same_routes(admin: httpx.Client) -> None:
    me = admin.get("/api/2.0/preview/scim/v2/Me").json()
    assert admin.get("/api/2.0/scim/v2/Me").json()["userName"] == me["userName"]
    r = admin.get(f"/api/2.0/scim/v2/Users/{me['id']}")
    assert r.status_code == 200 and r.json()["id"] == me["id"]
    # Only whole path segments are aliases: a look-alike prefix is not rewritten.
    assert_error(admin.get("/api/2.0/scim/v2Me"), 404, "ENDPOINT_NOT_FOUND")


def test_text_json_body_is_accepted(admin: httpx.Client) -> None:
    r = admin.post(
        "/api/2.0/token/create",
        content=json.dumps({"comment": "legacy"}),
        headers={"Content-Type": "text/json"},
    )
    assert r.status_code == 200 and r.json()["token_info"]["comment"] == "legacy"
    r = admin.post("/api/2.0/token/create", content=b'{"comment": "no type"}')
    assert r.status_code == 200


def test_malformed_json_is_400(admin: httpx.Client) -> None:
    r = admin.post(
        "/api/2.0/token/create",
        content=b'{"comment": ',
        headers={"Content-Type": "application/json"},
    )
    assert_error(r, 400, "MALFORMED_REQUEST")


def test_wrong_type_names_the_field(admin: httpx.Client) -> None:
    body = assert_error(
        admin.post("/api/2.0/token/create", json={"lifetime_seconds": "soon"}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    assert "lifetime_seconds" in body["message"]


def test_missing_field_names_the_field(admin: httpx.Client) -> None:
    body = assert_error(
        admin.post("/api/2.0/token/delete", json={}), 400, "INVALID_PARAMETER_VALUE"
    )
    assert "token_id" in body["message"]


def test_oversized_body_is_refused_by_length(admin: httpx.Client) -> None:
    big = b"x" * (16 * 1024 * 1024 + 1)
    r = admin.post(
        "/api/2.0/token/create", content=big, headers={"Content-Type": "application/json"}
    )
    assert_error(r, 413, "MAX_REQUEST_SIZE_EXCEEDED")


def test_oversized_chunked_body_is_refused_while_streaming(admin: httpx.Client) -> None:
    sent = 0

    def chunks() -> Iterator[bytes]:
        nonlocal sent
        for _ in range(64):
            sent += 1
            yield b"x" * (1024 * 1024)

    r = admin.post(
        "/api/2.0/token/create", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert_error(r, 413, "MAX_REQUEST_SIZE_EXCEEDED")


def test_unknown_endpoint_is_404(admin: httpx.Client) -> None:
    assert_error(admin.get("/api/2.0/nothing/here"), 404, "ENDPOINT_NOT_FOUND")


def test_admin_token_file_is_private(server: Server) -> None:
    mode = stat.S_IMODE(os.stat(server.data_dir / "admin-token").st_mode)
    assert mode == 0o600
    assert stat.S_IMODE(os.stat(server.data_dir / "secret.key").st_mode) == 0o600
    log = server.log_path.read_text()
    assert server.url in log and str(server.data_dir / "admin-token") in log


def test_restart_keeps_admin_and_sigterm_stops_cleanly(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = start_server(data)
    try:
        token = first.token
    finally:
        assert stop_server_process(first.process) == 0
    assert "Finished server process" in first.log_path.read_text()
    second = start_server(data)
    try:
        assert second.token == token
        with second.client() as c:
            me = c.get("/api/2.0/preview/scim/v2/Me")
            assert me.status_code == 200 and me.json()["userName"] == "admin@kiln.local"
            users = c.get("/api/2.0/preview/scim/v2/Users").json()
            assert users["totalResults"] == 1
    finally:
        assert stop_server_process(second.process) == 0
