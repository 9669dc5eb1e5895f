"""Secrets API end to end: databricks-sdk and raw HTTP against a real `kiln up`."""

from __future__ import annotations

import base64
import itertools
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import (
    InvalidParameterValue,
    PermissionDenied,
    ResourceAlreadyExists,
    ResourceDoesNotExist,
)
from databricks.sdk.service.workspace import AclPermission, ScopeBackendType

from kiln.errors import InvalidParameterValue as KilnInvalidParameterValue
from kiln.secrets import Permission, parse_permission
from kiln.secrets.scopes import validate_name
from kiln.secrets.values import decode_value
from support import Server, assert_error

LIMIT = 128 * 1024
_names = itertools.count()


def unique(prefix: str = "scope") -> str:
    """A scope (or group) name no other test uses."""
    return f"{prefix}-{os.getpid()}-{next(_names)}"


@pytest.fixture
def scope(sdk: WorkspaceClient) -> Iterator[str]:
    """A fresh scope created by the admin, deleted afterwards if a test left it."""
    name = unique()
    sdk.secrets.create_scope(name)
    yield name
    if name in {s.name for s in sdk.secrets.list_scopes()}:
        sdk.secrets.delete_scope(name)


@pytest.fixture
def user_client(
    server: Server, make_user: Callable[..., tuple[str, str]]
) -> Iterator[Callable[[], tuple[str, WorkspaceClient, httpx.Client]]]:
    """A factory of non-admin users: (user_name, sdk client, httpx client)."""
    opened: list[httpx.Client] = []

    def make() -> tuple[str, WorkspaceClient, httpx.Client]:
        name, token = make_user("secrets")
        http = server.client(token)
        opened.append(http)
        return name, WorkspaceClient(host=server.url, token=token, auth_type="pat"), http

    yield make
    for client in opened:
        client.close()


def _create_group(admin: httpx.Client, members: list[str]) -> tuple[str, str]:
    name = unique("group")
    r = admin.post(
        "/api/2.0/preview/scim/v2/Groups",
        json={"displayName": name, "members": [{"value": m} for m in members]},
    )
    assert r.status_code == 201, r.text
    return name, r.json()["id"]


def _user_id(admin: httpx.Client, user_name: str) -> str:
    r = admin.get("/api/2.0/preview/scim/v2/Users", params={"filter": f'userName eq "{user_name}"'})
    assert r.status_code == 200, r.text
    return str(r.json()["Resources"][0]["id"])


# --- scopes ---------------------------------------------------------------------------------


def test_scope_lifecycle(sdk: WorkspaceClient, server: Server) -> None:
    name = unique()
    sdk.secrets.create_scope(name, scope_backend_type=ScopeBackendType.DATABRICKS)
    listed = {s.name: s for s in sdk.secrets.list_scopes()}
    assert listed[name].backend_type == ScopeBackendType.DATABRICKS
    with pytest.raises(ResourceAlreadyExists):
        sdk.secrets.create_scope(name)
    # The creator gets MANAGE.
    acls = {a.principal: a.permission for a in sdk.secrets.list_acls(name)}
    admin_name = sdk.current_user.me().user_name
    assert acls == {admin_name: AclPermission.MANAGE}
    sdk.secrets.delete_scope(name)
    assert name not in {s.name for s in sdk.secrets.list_scopes()}
    with pytest.raises(ResourceDoesNotExist):
        sdk.secrets.delete_scope(name)


def test_scope_names_allow_the_documented_alphabet(sdk: WorkspaceClient) -> None:
    name = f"A.b_c-d@e-{os.getpid()}".ljust(128, "x")
    sdk.secrets.create_scope(name)
    assert name in {s.name for s in sdk.secrets.list_scopes()}
    sdk.secrets.put_secret(name, "k.e_y-1@x", string_value="v")
    assert [s.key for s in sdk.secrets.list_secrets(name)] == ["k.e_y-1@x"]
    sdk.secrets.delete_scope(name)


def test_initial_manage_principal_users(sdk: WorkspaceClient, user_client: Any) -> None:
    name = unique()
    sdk.secrets.create_scope(name, initial_manage_principal="users")
    acls = [(a.principal, a.permission) for a in sdk.secrets.list_acls(name)]
    assert acls == [("users", AclPermission.MANAGE)]
    _, user_sdk, _ = user_client()
    user_sdk.secrets.put_secret(name, "k", string_value="anyone may manage")
    assert user_sdk.secrets.list_acls(name)
    user_sdk.secrets.delete_scope(name)


def test_deleting_a_scope_deletes_its_secrets(sdk: WorkspaceClient) -> None:
    name = unique()
    sdk.secrets.create_scope(name)
    sdk.secrets.put_secret(name, "k", string_value="v")
    sdk.secrets.delete_scope(name)
    sdk.secrets.create_scope(name)
    assert list(sdk.secrets.list_secrets(name)) == []
    with pytest.raises(ResourceDoesNotExist):
        sdk.secrets.get_secret(name, "k")
    sdk.secrets.delete_scope(name)


@pytest.mark.parametrize(
    "body",
    [
        {"scope": ""},
        {"scope": "x" * 129},
        {"scope": "has space"},
        {"scope": "slash/name"},
        {"scope": "colon:name"},
        {"scope": "ünïcode"},
        {"scope": "ok-name", "scope_backend_type": "AZURE_KEYVAULT"},
        {"scope": "ok-name", "scope_backend_type": "databricks"},
        {"scope": "ok-name", "backend_azure_keyvault": {"resource_id": "r", "dns_name": "d"}},
        {"scope": "ok-name", "initial_manage_principal": "admins"},
        {"scope": 5},
        {},
    ],
)
def test_create_scope_rejects_bad_input(admin: httpx.Client, body: dict[str, Any]) -> None:
    r = admin.post("/api/2.0/secrets/scopes/create", json=body)
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")
    assert "ok-name" not in {
        s["name"] for s in admin.get("/api/2.0/secrets/scopes/list").json()["scopes"]
    }


def test_create_scope_with_sdk_rejects_bad_name(sdk: WorkspaceClient) -> None:
    with pytest.raises(InvalidParameterValue):
        sdk.secrets.create_scope("bad name")


# --- secrets --------------------------------------------------------------------------------


def test_put_list_get_delete(sdk: WorkspaceClient, scope: str) -> None:
    before = int(time.time() * 1000)
    sdk.secrets.put_secret(scope, "password", string_value="hunter2")
    sdk.secrets.put_secret(scope, "token", string_value="t0k3n ✓")
    listed = list(sdk.secrets.list_secrets(scope))
    assert [s.key for s in listed] == ["password", "token"]
    for s in listed:
        assert s.last_updated_timestamp is not None
        assert s.last_updated_timestamp >= before - 1000

    got = sdk.secrets.get_secret(scope, "token")
    assert got.key == "token"
    assert got.value is not None
    assert base64.b64decode(got.value).decode() == "t0k3n ✓"
    assert sdk.dbutils.secrets.get(scope, "password") == "hunter2"

    sdk.secrets.put_secret(scope, "password", string_value="correct horse")
    assert base64.b64decode(sdk.secrets.get_secret(scope, "password").value or "") == (
        b"correct horse"
    )
    assert [s.key for s in sdk.secrets.list_secrets(scope)] == ["password", "token"]

    sdk.secrets.delete_secret(scope, "password")
    assert [s.key for s in sdk.secrets.list_secrets(scope)] == ["token"]
    with pytest.raises(ResourceDoesNotExist):
        sdk.secrets.get_secret(scope, "password")
    with pytest.raises(ResourceDoesNotExist):
        sdk.secrets.delete_secret(scope, "password")


def test_overwrite_moves_the_timestamp(sdk: WorkspaceClient, scope: str) -> None:
    sdk.secrets.put_secret(scope, "k", string_value="1")
    (first,) = sdk.secrets.list_secrets(scope)
    time.sleep(0.01)
    sdk.secrets.put_secret(scope, "k", string_value="2")
    (second,) = sdk.secrets.list_secrets(scope)
    assert (second.last_updated_timestamp or 0) > (first.last_updated_timestamp or 0)


def test_bytes_value_round_trip(sdk: WorkspaceClient, scope: str) -> None:
    raw = bytes(range(256)) + b"\x00\xff\xfe"
    sdk.secrets.put_secret(scope, "blob", bytes_value=base64.b64encode(raw).decode())
    got = sdk.secrets.get_secret(scope, "blob")
    assert base64.b64decode(got.value or "") == raw
    assert sdk.dbutils.secrets.getBytes(scope, "blob") == raw


def test_empty_string_value(sdk: WorkspaceClient, scope: str) -> None:
    sdk.secrets.put_secret(scope, "empty", string_value="")
    assert sdk.secrets.get_secret(scope, "empty").value == ""


def test_list_never_carries_values(admin: httpx.Client, scope: str) -> None:
    marker = "list-must-not-show-this-9d1c"
    r = admin.post(
        "/api/2.0/secrets/put", json={"scope": scope, "key": "k", "string_value": marker}
    )
    assert r.status_code == 200, r.text
    r = admin.get("/api/2.0/secrets/list", params={"scope": scope})
    assert r.status_code == 200, r.text
    assert set(r.json()["secrets"][0]) == {"key", "last_updated_timestamp"}
    assert marker not in r.text
    assert base64.b64encode(marker.encode()).decode() not in r.text
    r = admin.get("/api/2.0/secrets/get", params={"scope": scope, "key": "k"})
    assert r.json() == {"key": "k", "value": base64.b64encode(marker.encode()).decode()}


def test_value_size_limit(sdk: WorkspaceClient, admin: httpx.Client, scope: str) -> None:
    sdk.secrets.put_secret(scope, "max-string", string_value="s" * LIMIT)
    at_limit = os.urandom(LIMIT)
    sdk.secrets.put_secret(scope, "max-bytes", bytes_value=base64.b64encode(at_limit).decode())
    assert sdk.dbutils.secrets.getBytes(scope, "max-bytes") == at_limit

    with pytest.raises(InvalidParameterValue):
        sdk.secrets.put_secret(scope, "too-big", string_value="s" * (LIMIT + 1))
    r = admin.post(
        "/api/2.0/secrets/put",
        json={
            "scope": scope,
            "key": "too-big",
            "bytes_value": base64.b64encode(b"b" * (LIMIT + 1)).decode(),
        },
    )
    body = assert_error(r, 400, "INVALID_PARAMETER_VALUE")
    assert "bbbb" not in body["message"]
    # A multi-byte string is measured in UTF-8 bytes, not characters.
    r = admin.post(
        "/api/2.0/secrets/put",
        json={"scope": scope, "key": "too-big", "string_value": "é" * (LIMIT // 2 + 1)},
    )
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")
    assert "too-big" not in {s.key for s in sdk.secrets.list_secrets(scope)}


@pytest.mark.parametrize(
    ("extra", "code"),
    [
        ({"key": "k", "string_value": "a", "bytes_value": "YQ=="}, "INVALID_PARAMETER_VALUE"),
        ({"key": "k"}, "INVALID_PARAMETER_VALUE"),
        ({"key": "k", "bytes_value": "not base64!"}, "INVALID_PARAMETER_VALUE"),
        ({"key": "k", "bytes_value": "YQ"}, "INVALID_PARAMETER_VALUE"),
        ({"key": "", "string_value": "a"}, "INVALID_PARAMETER_VALUE"),
        ({"key": "k" * 129, "string_value": "a"}, "INVALID_PARAMETER_VALUE"),
        ({"key": "bad key", "string_value": "a"}, "INVALID_PARAMETER_VALUE"),
        ({"key": "../k", "string_value": "a"}, "INVALID_PARAMETER_VALUE"),
        ({"string_value": "a"}, "INVALID_PARAMETER_VALUE"),
        ({"key": "k", "string_value": 12}, "INVALID_PARAMETER_VALUE"),
    ],
)
def test_put_rejects_bad_input(
    admin: httpx.Client, scope: str, extra: dict[str, Any], code: str
) -> None:
    r = admin.post("/api/2.0/secrets/put", json={"scope": scope, **extra})
    assert_error(r, 400, code)
    assert admin.get("/api/2.0/secrets/list", params={"scope": scope}).json()["secrets"] == []


def test_put_rejects_a_key_of_129_characters_but_takes_128(
    sdk: WorkspaceClient, scope: str
) -> None:
    sdk.secrets.put_secret(scope, "k" * 128, string_value="v")
    with pytest.raises(InvalidParameterValue):
        sdk.secrets.put_secret(scope, "k" * 129, string_value="v")


def test_unknown_scope_or_key_is_404(admin: httpx.Client, scope: str) -> None:
    missing = unique("missing")
    for method, path, payload in [
        ("POST", "/api/2.0/secrets/put", {"scope": missing, "key": "k", "string_value": "v"}),
        ("POST", "/api/2.0/secrets/delete", {"scope": missing, "key": "k"}),
        ("GET", "/api/2.0/secrets/list", {"scope": missing}),
        ("GET", "/api/2.0/secrets/get", {"scope": missing, "key": "k"}),
        ("POST", "/api/2.0/secrets/scopes/delete", {"scope": missing}),
        (
            "POST",
            "/api/2.0/secrets/acls/put",
            {"scope": missing, "principal": "users", "permission": "READ"},
        ),
        ("GET", "/api/2.0/secrets/acls/get", {"scope": missing, "principal": "users"}),
        ("GET", "/api/2.0/secrets/acls/list", {"scope": missing}),
        ("POST", "/api/2.0/secrets/acls/delete", {"scope": missing, "principal": "users"}),
        ("GET", "/api/2.0/secrets/get", {"scope": scope, "key": "nope"}),
        ("POST", "/api/2.0/secrets/delete", {"scope": scope, "key": "nope"}),
    ]:
        where = {"params": payload} if method == "GET" else {"json": payload}
        r = admin.request(method, path, **where)
        assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST")


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/api/2.0/secrets/list", {}),
        ("/api/2.0/secrets/get", {"key": "k"}),
        ("/api/2.0/secrets/acls/list", {}),
        ("/api/2.0/secrets/acls/get", {"scope": "s"}),
    ],
)
def test_missing_query_parameter_is_400(
    admin: httpx.Client, path: str, params: dict[str, str]
) -> None:
    assert_error(admin.get(path, params=params), 400, "INVALID_PARAMETER_VALUE")


# --- ACLs -----------------------------------------------------------------------------------


def test_acl_crud(sdk: WorkspaceClient, admin: httpx.Client, scope: str, user_client: Any) -> None:
    user_name, _, _ = user_client()
    group, _ = _create_group(admin, [])
    sdk.secrets.put_acl(scope, user_name, AclPermission.READ)
    sdk.secrets.put_acl(scope, group, AclPermission.WRITE)
    acl = sdk.secrets.get_acl(scope, user_name)
    assert (acl.principal, acl.permission) == (user_name, AclPermission.READ)
    # put_acl overwrites.
    sdk.secrets.put_acl(scope, user_name, AclPermission.MANAGE)
    assert sdk.secrets.get_acl(scope, user_name).permission == AclPermission.MANAGE
    listed = {a.principal: a.permission for a in sdk.secrets.list_acls(scope)}
    assert listed[user_name] == AclPermission.MANAGE
    assert listed[group] == AclPermission.WRITE
    # User names match case-insensitively and are stored as the user spells them.
    assert sdk.secrets.get_acl(scope, user_name.upper()).principal == user_name
    sdk.secrets.delete_acl(scope, user_name)
    assert user_name not in {a.principal for a in sdk.secrets.list_acls(scope)}
    with pytest.raises(ResourceDoesNotExist):
        sdk.secrets.get_acl(scope, user_name)
    with pytest.raises(ResourceDoesNotExist):
        sdk.secrets.delete_acl(scope, user_name)


@pytest.mark.parametrize(
    ("principal", "permission"),
    [
        ("users", "read"),
        ("users", "OWNER"),
        ("users", ""),
        ("no-such-principal@example.com", "READ"),
        ("", "READ"),
    ],
)
def test_put_acl_rejects_bad_input(
    admin: httpx.Client, scope: str, principal: str, permission: str
) -> None:
    r = admin.post(
        "/api/2.0/secrets/acls/put",
        json={"scope": scope, "principal": principal, "permission": permission},
    )
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")


def test_non_admin_needs_acls(sdk: WorkspaceClient, scope: str, user_client: Any) -> None:
    user_name, user_sdk, _ = user_client()
    sdk.secrets.put_secret(scope, "k", string_value="secret")
    # Scope names are visible to everyone; their contents are not.
    assert scope in {s.name for s in user_sdk.secrets.list_scopes()}

    denied_without_read: list[Callable[[], Any]] = [
        lambda: list(user_sdk.secrets.list_secrets(scope)),
        lambda: user_sdk.secrets.get_secret(scope, "k"),
    ]
    denied_without_write: list[Callable[[], Any]] = [
        lambda: user_sdk.secrets.put_secret(scope, "k2", string_value="x"),
        lambda: user_sdk.secrets.delete_secret(scope, "k"),
    ]
    denied_without_manage: list[Callable[[], Any]] = [
        lambda: list(user_sdk.secrets.list_acls(scope)),
        lambda: user_sdk.secrets.get_acl(scope, user_name),
        lambda: user_sdk.secrets.put_acl(scope, user_name, AclPermission.MANAGE),
        lambda: user_sdk.secrets.delete_acl(scope, user_name),
        lambda: user_sdk.secrets.delete_scope(scope),
    ]

    def assert_denied(calls: list[Callable[[], Any]]) -> None:
        for call in calls:
            with pytest.raises(PermissionDenied):
                call()

    assert_denied(denied_without_read + denied_without_write + denied_without_manage)

    sdk.secrets.put_acl(scope, user_name, AclPermission.READ)
    assert [s.key for s in user_sdk.secrets.list_secrets(scope)] == ["k"]
    assert user_sdk.dbutils.secrets.get(scope, "k") == "secret"
    assert_denied(denied_without_write + denied_without_manage)

    sdk.secrets.put_acl(scope, user_name, AclPermission.WRITE)
    user_sdk.secrets.put_secret(scope, "k2", string_value="mine")
    user_sdk.secrets.delete_secret(scope, "k2")
    assert_denied(denied_without_manage)

    sdk.secrets.put_acl(scope, user_name, AclPermission.MANAGE)
    assert {a.principal for a in user_sdk.secrets.list_acls(scope)} >= {user_name}
    user_sdk.secrets.delete_scope(scope)


def test_denial_does_not_reveal_the_value(
    scope: str, sdk: WorkspaceClient, user_client: Any
) -> None:
    _, _, http = user_client()
    sdk.secrets.put_secret(scope, "k", string_value="denied-value-7f3e")
    r = http.get("/api/2.0/secrets/get", params={"scope": scope, "key": "k"})
    body = assert_error(r, 403, "PERMISSION_DENIED")
    assert "denied-value-7f3e" not in r.text
    assert body["message"]


def test_creator_gets_manage_and_others_do_not(user_client: Any) -> None:
    owner, owner_sdk, _ = user_client()
    _, other_sdk, _ = user_client()
    name = unique()
    owner_sdk.secrets.create_scope(name)
    assert [(a.principal, a.permission) for a in owner_sdk.secrets.list_acls(name)] == [
        (owner, AclPermission.MANAGE)
    ]
    owner_sdk.secrets.put_secret(name, "k", string_value="owned")
    assert owner_sdk.dbutils.secrets.get(name, "k") == "owned"
    with pytest.raises(PermissionDenied):
        other_sdk.secrets.get_secret(name, "k")
    with pytest.raises(PermissionDenied):
        other_sdk.secrets.delete_scope(name)
    owner_sdk.secrets.delete_scope(name)


def test_group_acl_counts_nested_membership(
    sdk: WorkspaceClient, admin: httpx.Client, scope: str, user_client: Any
) -> None:
    user_name, user_sdk, _ = user_client()
    inner, inner_id = _create_group(admin, [_user_id(admin, user_name)])
    outer, _ = _create_group(admin, [inner_id])
    sdk.secrets.put_secret(scope, "k", string_value="for the group")
    with pytest.raises(PermissionDenied):
        user_sdk.secrets.get_secret(scope, "k")
    sdk.secrets.put_acl(scope, outer, AclPermission.READ)
    assert user_sdk.dbutils.secrets.get(scope, "k") == "for the group"
    with pytest.raises(PermissionDenied):
        user_sdk.secrets.put_secret(scope, "k", string_value="no")
    # The strongest grant wins: WRITE through the inner group, READ through the outer one.
    sdk.secrets.put_acl(scope, inner, AclPermission.WRITE)
    user_sdk.secrets.put_secret(scope, "k", string_value="yes")
    assert user_sdk.dbutils.secrets.get(scope, "k") == "yes"


def test_users_group_covers_everyone(sdk: WorkspaceClient, scope: str, user_client: Any) -> None:
    _, user_sdk, _ = user_client()
    sdk.secrets.put_secret(scope, "k", string_value="for all")
    sdk.secrets.put_acl(scope, "users", AclPermission.READ)
    assert user_sdk.dbutils.secrets.get(scope, "k") == "for all"


# --- at rest --------------------------------------------------------------------------------


def test_values_are_encrypted_at_rest(sdk: WorkspaceClient, server: Server, scope: str) -> None:
    plain = f"plaintext-marker-{os.getpid()}-c0ffee"
    raw = b"\x00binary-marker\xff" + plain.encode()
    sdk.secrets.put_secret(scope, "text", string_value=plain)
    sdk.secrets.put_secret(scope, "blob", bytes_value=base64.b64encode(raw).decode())
    assert sdk.dbutils.secrets.get(scope, "text") == plain

    db_files = sorted(server.data_dir.glob("kiln.db*"))
    assert db_files, list(server.data_dir.iterdir())
    stored = b"".join(p.read_bytes() for p in db_files)
    for needle in (
        plain.encode(),
        b"binary-marker",
        base64.b64encode(raw),
        base64.b64encode(plain.encode()),
    ):
        assert needle not in stored
    log = server.log_path.read_bytes()
    assert plain.encode() not in log

    with sqlite3.connect(f"file:{server.data_dir / 'kiln.db'}?mode=ro", uri=True) as conn:
        rows = conn.execute(
            "SELECT s.key, s.value_encrypted FROM secrets s JOIN secret_scopes c "
            "ON c.id = s.scope_id WHERE c.name = ?",
            (scope,),
        ).fetchall()
    assert {key for key, _ in rows} == {"text", "blob"}
    for _, ciphertext in rows:
        # Fernet tokens are url-safe base64 starting with version byte 0x80.
        assert base64.urlsafe_b64decode(ciphertext)[0] == 0x80
        assert plain.encode() not in ciphertext


# --- pure functions -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("string_value", "bytes_value", "expected"),
    [
        ("hé", None, "hé".encode()),
        ("", None, b""),
        (None, base64.b64encode(b"\x00\xff").decode(), b"\x00\xff"),
        (None, "", b""),
        ("abcd", None, b"abcd"),
    ],
)
def test_decode_value(string_value: str | None, bytes_value: str | None, expected: bytes) -> None:
    assert decode_value(string_value, bytes_value, limit=4) == expected


@pytest.mark.parametrize(
    ("string_value", "bytes_value"),
    [
        ("a", "YQ=="),
        (None, None),
        (None, "YQ"),
        (None, "Y Q=="),
        (None, "*"),
        ("abcde", None),
        ("éée", None),
        (None, base64.b64encode(b"12345").decode()),
    ],
)
def test_decode_value_rejects(string_value: str | None, bytes_value: str | None) -> None:
    with pytest.raises(KilnInvalidParameterValue):
        decode_value(string_value, bytes_value, limit=4)


@pytest.mark.parametrize("name", ["a", "A-b_c.d@e", "9" * 128, "user@example.com"])
def test_validate_name_accepts(name: str) -> None:
    assert validate_name("scope", name) == name


@pytest.mark.parametrize("name", ["", "x" * 129, "a b", "a/b", "a:b", "ä", "a\nb", "a+b"])
def test_validate_name_rejects(name: str) -> None:
    with pytest.raises(KilnInvalidParameterValue):
        validate_name("scope", name)


def test_permission_order() -> None:
    read, write, manage = Permission.READ, Permission.WRITE, Permission.MANAGE
    assert [p for p in Permission if p.covers(read)] == [read, write, manage]
    assert [p for p in Permission if p.covers(write)] == [write, manage]
    assert [p for p in Permission if p.covers(manage)] == [manage]


@pytest.mark.parametrize("raw", ["read", "Manage", "OWNER", "", " READ"])
def test_parse_permission_rejects(raw: str) -> None:
    with pytest.raises(KilnInvalidParameterValue):
        parse_permission(raw)


def test_parse_permission() -> None:
    assert [parse_permission(p) for p in ("READ", "WRITE", "MANAGE")] == list(Permission)
