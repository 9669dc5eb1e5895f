"""The workspace model registry's Databricks APIs, through databricks-sdk's `w.model_registry`:
transition requests, comments, the Databricks stage transition and registered-model view."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import NotFound
from databricks.sdk.service.ml import ActivityAction, ActivityType

from support import Server, assert_error

SOURCE = "dbfs:/databricks/mlflow-tracking/0/0123456789abcdef/artifacts/model"

# The ML area loads once, before any client call can time out on it.
pytestmark = pytest.mark.usefixtures("mlflow_area")


@pytest.fixture(scope="module")
def model(sdk: WorkspaceClient) -> Iterator[str]:
    """A workspace-registry model with three versions."""
    name = "ws-registry-model"
    sdk.model_registry.create_model(name)
    for _ in range(3):
        sdk.model_registry.create_model_version(name, SOURCE)
    yield name


def _stage(sdk: WorkspaceClient, name: str, version: str) -> str | None:
    mv = sdk.model_registry.get_model_version(name, version).model_version
    assert mv is not None
    return mv.current_stage


def test_transition_requests_approve_reject_cancel(sdk: WorkspaceClient, model: str) -> None:
    mr = sdk.model_registry
    created = mr.create_transition_request(model, "1", "Staging", comment="ready?").request
    assert created is not None and created.to_stage == "Staging"
    assert created.user_id == "admin@kiln.local" and created.comment == "ready?"
    assert created.available_actions and ActivityAction.APPROVE_TRANSITION_REQUEST in (
        created.available_actions
    )
    mr.create_transition_request(model, "1", "Production")
    open_requests = list(mr.list_transition_requests(model, "1"))
    assert [(r.to_stage, r.from_stage) for r in open_requests] == [
        ("Staging", "None"),
        ("Production", "None"),
    ]
    assert all(r.activity_type == ActivityType.REQUESTED_TRANSITION for r in open_requests)

    approved = mr.approve_transition_request(model, "1", "Staging", False, comment="ok").activity
    assert approved is not None and approved.activity_type == ActivityType.APPROVED_REQUEST
    assert (approved.from_stage, approved.to_stage) == ("None", "Staging")
    assert _stage(sdk, model, "1") == "Staging"
    rejected = mr.reject_transition_request(model, "1", "Production", comment="no").activity
    assert rejected is not None and rejected.activity_type == ActivityType.REJECTED_REQUEST
    assert list(mr.list_transition_requests(model, "1")) == []
    assert _stage(sdk, model, "1") == "Staging"

    mr.create_transition_request(model, "2", "Archived")
    cancelled = mr.delete_transition_request(model, "2", "Archived", "admin@kiln.local").activity
    assert cancelled is not None and cancelled.activity_type == ActivityType.CANCELLED_REQUEST
    assert list(mr.list_transition_requests(model, "2")) == []
    # Nothing left to approve, reject or cancel.
    with pytest.raises(NotFound):
        mr.approve_transition_request(model, "2", "Archived", False)
    with pytest.raises(NotFound):
        mr.reject_transition_request(model, "2", "Archived")
    with pytest.raises(NotFound):
        mr.delete_transition_request(model, "2", "Archived", "admin@kiln.local")


def test_databricks_transition_stage_archives_existing(sdk: WorkspaceClient, model: str) -> None:
    mr = sdk.model_registry
    first = mr.transition_stage(model, "2", "Production", False).model_version_databricks
    assert first is not None and first.current_stage == "Production"
    second = mr.transition_stage(
        model, "3", "Production", True, comment="promote"
    ).model_version_databricks
    assert second is not None and second.current_stage == "Production"
    assert second.name == model and second.version == "3"
    assert _stage(sdk, model, "2") == "Archived"
    got = mr.get_model(model).registered_model_databricks
    assert got is not None and got.name == model and got.id
    stages = {v.version: v.current_stage for v in got.latest_versions or []}
    assert stages["3"] == "Production"


def test_comments(
    server: Server, sdk: WorkspaceClient, model: str, make_user: Callable[..., tuple[str, str]]
) -> None:
    mr = sdk.model_registry
    comment = mr.create_comment(model, "1", "looks good").comment
    assert comment is not None and comment.id and comment.comment == "looks good"
    assert comment.user_id == "admin@kiln.local"
    updated = mr.update_comment(comment.id, "looks great").comment
    assert updated is not None and updated.comment == "looks great"
    _name, token = make_user("commenter")
    with server.client(token) as client:
        r = client.patch("/api/2.0/mlflow/comments/update", json={"id": comment.id, "comment": "x"})
        assert_error(r, 403, "PERMISSION_DENIED")
        r = client.delete("/api/2.0/mlflow/comments/delete", params={"id": comment.id})
        assert_error(r, 403, "PERMISSION_DENIED")
        r = client.delete(
            "/api/2.0/mlflow/transition-requests/delete",
            params={
                "name": model,
                "version": "1",
                "stage": "Staging",
                "creator": "admin@kiln.local",
            },
        )
        assert_error(r, 403, "PERMISSION_DENIED")
    mr.delete_comment(comment.id)
    with pytest.raises(NotFound):
        mr.update_comment(comment.id, "again")
    with pytest.raises(NotFound):
        mr.delete_comment("999999")
    with pytest.raises(NotFound):
        mr.delete_comment("not-a-number")


@pytest.mark.parametrize(
    ("method", "path", "params", "status", "code"),
    [
        (
            "post",
            "transition-requests/create",
            {"name": "nope", "version": "1", "stage": "Staging"},
            404,
            "RESOURCE_DOES_NOT_EXIST",
        ),
        (
            "post",
            "transition-requests/create",
            {"name": "ws-registry-model", "version": "99", "stage": "Staging"},
            404,
            "RESOURCE_DOES_NOT_EXIST",
        ),
        (
            "post",
            "transition-requests/create",
            {"name": "ws-registry-model", "version": "1", "stage": "Prod"},
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            "post",
            "transition-requests/create",
            {"name": "ws-registry-model", "version": "x", "stage": "Staging"},
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            "post",
            "transition-requests/create",
            {"version": "1", "stage": "Staging"},
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            "post",
            "transition-requests/create",
            {"name": "ws-registry-model", "version": "1", "stage": "Staging", "comment": 5},
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            "get",
            "transition-requests/list",
            {"name": "nope", "version": "1"},
            404,
            "RESOURCE_DOES_NOT_EXIST",
        ),
        (
            "post",
            "transition-requests/approve",
            {
                "name": "ws-registry-model",
                "version": "1",
                "stage": "Archived",
                "archive_existing_versions": False,
            },
            404,
            "RESOURCE_DOES_NOT_EXIST",
        ),
        (
            "post",
            "transition-requests/approve",
            {
                "name": "ws-registry-model",
                "version": "1",
                "stage": "Archived",
                "archive_existing_versions": "yes",
            },
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            "delete",
            "transition-requests/delete",
            {"name": "ws-registry-model", "version": "1", "stage": "Staging"},
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            "post",
            "databricks/model-versions/transition-stage",
            {
                "name": "ws-registry-model",
                "version": "1",
                "stage": "Nowhere",
                "archive_existing_versions": False,
            },
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            "post",
            "databricks/model-versions/transition-stage",
            {
                "name": "nope",
                "version": "1",
                "stage": "Staging",
                "archive_existing_versions": False,
            },
            404,
            "RESOURCE_DOES_NOT_EXIST",
        ),
        (
            "get",
            "databricks/registered-models/get",
            {"name": "nope"},
            404,
            "RESOURCE_DOES_NOT_EXIST",
        ),
        ("get", "databricks/registered-models/get", {}, 400, "INVALID_PARAMETER_VALUE"),
        (
            "post",
            "comments/create",
            {"name": "ws-registry-model", "version": "1"},
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            "post",
            "comments/create",
            {"name": "nope", "version": "1", "comment": "hi"},
            404,
            "RESOURCE_DOES_NOT_EXIST",
        ),
        ("patch", "comments/update", {"comment": "hi"}, 400, "INVALID_PARAMETER_VALUE"),
    ],
)
def test_registry_bad_input(
    admin: httpx.Client,
    model: str,
    method: str,
    path: str,
    params: dict[str, object],
    status: int,
    code: str,
) -> None:
    url = f"/api/2.0/mlflow/{path}"
    if method in ("get", "delete"):
        r = admin.request(method.upper(), url, params={k: str(v) for k, v in params.items()})
    else:
        r = admin.request(method.upper(), url, json=params)
    assert_error(r, status, code)


def test_registry_malformed_body(admin: httpx.Client) -> None:
    r = admin.post(
        "/api/2.0/mlflow/transition-requests/create",
        content=b"[1]",
        headers={"content-type": "application/json"},
    )
    assert_error(r, 400, "MALFORMED_REQUEST")


UC = "/api/2.0/mlflow/unity-catalog"


def test_uc_model_version_is_pending_until_finalized(admin: httpx.Client) -> None:
    name = "main.default.pending_model"
    r = admin.post(UC + "/registered-models/create", json={"name": name})
    assert r.status_code == 200, r.text
    r = admin.post(UC + "/model-versions/create", json={"name": name, "source": SOURCE})
    assert r.status_code == 200, r.text
    assert r.json()["model_version"]["status"] == "PENDING_REGISTRATION"
    r = admin.get(UC + "/model-versions/get", params={"name": name, "version": "1"})
    assert r.json()["model_version"]["status"] == "PENDING_REGISTRATION"
    for _ in range(2):  # finalizing a READY version again changes nothing
        r = admin.post(UC + "/model-versions/finalize", json={"name": name, "version": "1"})
        assert r.status_code == 200, r.text
        assert r.json()["model_version"]["status"] == "READY"
    r = admin.get(UC + "/model-versions/get", params={"name": name, "version": "1"})
    assert r.json()["model_version"]["status"] == "READY"
    r = admin.post(UC + "/model-versions/finalize", json={"name": name, "version": "7"})
    assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST")
    r = admin.post(UC + "/model-versions/finalize", json={"name": "no_dots", "version": "1"})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")
    r = admin.post(UC + "/model-versions/finalize", json={"name": name, "version": "0"})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")
