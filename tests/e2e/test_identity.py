"""Tokens and SCIM through databricks-sdk and raw HTTP against the live server."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import NotFound, PermissionDenied
from databricks.sdk.service import iam

from support import Server, assert_error


def test_current_user_me(sdk: WorkspaceClient) -> None:
    me = sdk.current_user.me()
    assert me.user_name == "admin@kiln.local"
    assert me.active
    assert {g.display for g in me.groups or []} >= {"admins", "users"}


def test_token_create_list_delete(server: Server, sdk: WorkspaceClient) -> None:
    created = sdk.tokens.create(comment="e2e", lifetime_seconds=3600)
    assert created.token_value and created.token_value.startswith("dapi")
    assert created.token_info and created.token_info.comment == "e2e"
    ids = {t.token_id for t in sdk.tokens.list()}
    assert created.token_info.token_id in ids
    with server.client(created.token_value) as c:
        assert c.get("/api/2.0/preview/scim/v2/Me").status_code == 200
    sdk.tokens.delete(created.token_info.token_id)
    with server.client(created.token_value) as c:
        assert_error(c.get("/api/2.0/preview/scim/v2/Me"), 401, "UNAUTHENTICATED")
    with pytest.raises(NotFound):
        sdk.tokens.delete(created.token_info.token_id)


def test_tokens_are_stored_hashed(server: Server, sdk: WorkspaceClient) -> None:
    created = sdk.tokens.create(comment="hash-check")
    assert created.token_value
    raw = b"".join(p.read_bytes() for p in server.data_dir.glob("kiln.db*"))
    assert created.token_value.encode() not in raw
    assert created.token_value[-32:].encode() not in raw


def test_expired_token_is_refused(server: Server, admin: httpx.Client) -> None:
    r = admin.post("/api/2.0/token/create", json={"lifetime_seconds": 1, "comment": "short"})
    value = r.json()["token_value"]
    time.sleep(1.2)
    with server.client(value) as c:
        assert_error(c.get("/api/2.0/token/list"), 401, "UNAUTHENTICATED")


def test_token_lifetime_limit(admin: httpx.Client) -> None:
    r = admin.post("/api/2.0/token/create", json={"lifetime_seconds": 10**9})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")


def test_token_management_is_admin_only(
    server: Server, sdk: WorkspaceClient, make_user: Callable[..., tuple[str, str]]
) -> None:
    name, token = make_user("tm")
    infos = list(sdk.token_management.list(created_by_username=name))
    assert len(infos) == 1 and infos[0].created_by_username == name
    got = sdk.token_management.get(infos[0].token_id or "")
    assert got.token_info and got.token_info.owner_id == infos[0].owner_id
    user = WorkspaceClient(host=server.url, token=token, auth_type="pat")
    with pytest.raises(PermissionDenied):
        list(user.token_management.list())
    # A user sees only its own tokens through the Token API.
    assert [t.comment for t in user.tokens.list()] == ["test"]
    sdk.token_management.delete(infos[0].token_id or "")
    with server.client(token) as c:
        assert_error(c.get("/api/2.0/token/list"), 401, "UNAUTHENTICATED")


def test_user_cannot_delete_anothers_token(
    server: Server, sdk: WorkspaceClient, make_user: Callable[..., tuple[str, str]]
) -> None:
    admin_token = sdk.tokens.create(comment="mine")
    _, token = make_user("other")
    with server.client(token) as c:
        r = c.post("/api/2.0/token/delete", json={"token_id": admin_token.token_info.token_id})  # type: ignore[union-attr]
        assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST")


def test_scim_users(sdk: WorkspaceClient) -> None:
    u = sdk.users.create(user_name="Jane.Doe@example.com", display_name="Jane")
    assert u.id and u.user_name == "Jane.Doe@example.com"
    found = list(sdk.users.list(filter='userName eq "jane.doe@example.com"'))
    assert [x.id for x in found] == [u.id]
    assert sdk.users.get(u.id).display_name == "Jane"
    sdk.users.patch(
        u.id,
        operations=[iam.Patch(op=iam.PatchOp.REPLACE, value={"active": False})],
        schemas=[iam.PatchSchema.URN_IETF_PARAMS_SCIM_API_MESSAGES_2_0_PATCH_OP],
    )
    assert sdk.users.get(u.id).active is False
    names = [x.user_name for x in sdk.users.list(filter='userName co "example.com"')]
    assert "Jane.Doe@example.com" in names
    sdk.users.delete(u.id)
    with pytest.raises(NotFound):
        sdk.users.get(u.id)


def test_scim_duplicate_user_is_409(admin: httpx.Client) -> None:
    body = {"userName": "dup@example.com"}
    assert admin.post("/api/2.0/preview/scim/v2/Users", json=body).status_code == 201
    r = admin.post("/api/2.0/preview/scim/v2/Users", json=body)
    assert_error(r, 409, "RESOURCE_ALREADY_EXISTS")


def test_scim_groups_and_membership(sdk: WorkspaceClient) -> None:
    u = sdk.users.create(user_name="member@example.com")
    g = sdk.groups.create(display_name="data-eng")
    assert g.id
    sdk.groups.patch(
        g.id,
        operations=[iam.Patch(op=iam.PatchOp.ADD, value={"members": [{"value": u.id}]})],
        schemas=[iam.PatchSchema.URN_IETF_PARAMS_SCIM_API_MESSAGES_2_0_PATCH_OP],
    )
    got = sdk.groups.get(g.id)
    assert [m.value for m in got.members or []] == [u.id]
    assert "data-eng" in {x.display for x in sdk.users.get(u.id or "").groups or []}
    nested = sdk.groups.create(
        display_name="data-eng-leads", members=[iam.ComplexValue(value=u.id)]
    )
    sdk.groups.patch(
        g.id,
        operations=[iam.Patch(op=iam.PatchOp.ADD, path="members", value=[{"value": nested.id}])],
    )
    assert {m.value for m in sdk.groups.get(g.id).members or []} == {u.id, nested.id}
    sdk.groups.patch(
        g.id,
        operations=[iam.Patch(op=iam.PatchOp.REMOVE, path=f'members[value eq "{u.id}"]')],
    )
    assert [m.value for m in sdk.groups.get(g.id).members or []] == [nested.id]
    listed = list(sdk.groups.list(filter='displayName sw "data-eng"'))
    assert {x.display_name for x in listed} == {"data-eng", "data-eng-leads"}
    sdk.groups.delete(g.id)
    with pytest.raises(NotFound):
        sdk.groups.get(g.id)


def test_scim_pagination(admin: httpx.Client) -> None:
    for i in range(3):
        admin.post("/api/2.0/preview/scim/v2/Users", json={"userName": f"page{i}@example.org"})
    flt = 'userName ew "@example.org"'
    first = admin.get(
        "/api/2.0/preview/scim/v2/Users", params={"filter": flt, "count": 2, "startIndex": 1}
    ).json()
    second = admin.get(
        "/api/2.0/preview/scim/v2/Users", params={"filter": flt, "count": 2, "startIndex": 3}
    ).json()
    assert first["totalResults"] == 3 and first["itemsPerPage"] == 2
    assert second["itemsPerPage"] == 1
    names = {r["userName"] for r in first["Resources"] + second["Resources"]}
    assert names == {f"page{i}@example.org" for i in range(3)}


def test_scim_writes_are_admin_only(
    server: Server, make_user: Callable[..., tuple[str, str]]
) -> None:
    _, token = make_user("plain")
    with server.client(token) as c:
        assert c.get("/api/2.0/preview/scim/v2/Me").status_code == 200
        r = c.post("/api/2.0/preview/scim/v2/Users", json={"userName": "x@example.com"})
        assert_error(r, 403, "PERMISSION_DENIED")
        r = c.post("/api/2.0/preview/scim/v2/Groups", json={"displayName": "sneaky"})
        assert_error(r, 403, "PERMISSION_DENIED")


def test_acting_user_comes_from_token(
    server: Server, make_user: Callable[..., tuple[str, str]]
) -> None:
    name, token = make_user("actor")
    with server.client(token) as c:
        r = c.post(
            "/api/2.0/token/create",
            json={"comment": "spoof", "user_name": "admin@kiln.local", "user_id": 1},
        )
        assert r.status_code == 200
        me = c.get("/api/2.0/preview/scim/v2/Me").json()
    assert me["userName"] == name


def test_scim_bad_input(admin: httpx.Client) -> None:
    assert_error(admin.get("/api/2.0/preview/scim/v2/Users/123"), 404, "RESOURCE_DOES_NOT_EXIST")
    assert_error(admin.get("/api/2.0/preview/scim/v2/Users/abc"), 404, "RESOURCE_DOES_NOT_EXIST")
    r = admin.get("/api/2.0/preview/scim/v2/Users", params={"filter": 'password eq "x"'})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")
    body = assert_error(
        admin.post("/api/2.0/preview/scim/v2/Users", json={}), 400, "INVALID_PARAMETER_VALUE"
    )
    assert "userName" in body["message"]
    r = admin.patch(
        "/api/2.0/preview/scim/v2/Groups/1", json={"Operations": [{"op": "add", "value": {}}]}
    )
    assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST")
