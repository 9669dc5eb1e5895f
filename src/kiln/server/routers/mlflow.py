"""MLflow inside Kiln: the tracking server at /api/2.0/mlflow and /ajax-api, and the UC registry.

Requests go to the real MLflow server app unchanged, after Kiln's auth, with three exceptions
served here: the Unity Catalog registry routes OSS MLflow lacks, the artifact routes (Kiln keeps
artifacts in the DBFS root, which MLflow's server cannot reach), and run creation, whose user is
the token's user whatever the client sent.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.routing import BaseRoute, Match
from starlette.types import Message, Receive, Scope, Send

from kiln.catalog import metastore
from kiln.errors import (
    InvalidParameterValue,
    ResourceDoesNotExist,
)
from kiln.ml import artifacts, experiment_objects, uc_registry, webhooks
from kiln.ml.services import MlServices
from kiln.principal import Principal
from kiln.server.deps import CurrentPrincipal, Session
from kiln.server.routers import mlflow_registry
from kiln.server.routers.ml_deps import Ml, ml_services
from kiln.server.routers.mlflow_params import max_results as _max_results
from kiln.server.routers.mlflow_params import request_params as _params
from kiln.server.routers.mlflow_params import tags as _tags

router = APIRouter(tags=["mlflow"])

UC = "/api/2.0/mlflow/unity-catalog"
ARTIFACTS = ("/api/2.0/mlflow/artifacts", "/ajax-api/2.0/mlflow/artifacts")
STORAGE_ROOT = "dbfs:"
# MLflow's web UI, served by MLflow's own app with the prefix removed. Not /ml: that is a
# client route of Kiln's own web app, which anyone may load (kiln.server.webui).
UI = "/mlflow"
# Experiments are workspace objects: these four are served here (see kiln.ml.experiment_objects).
EXPERIMENTS = ("/api/2.0/mlflow/experiments", "/ajax-api/2.0/mlflow/experiments")
# MLflow's own workspace-registry handlers whose calls fire registry webhooks.
REGISTRY_PREFIXES = ("/api/2.0/mlflow/", "/ajax-api/2.0/mlflow/")
REGISTRY_EVENT_OPS = frozenset(
    {
        "registered-models/create",
        "model-versions/create",
        "model-versions/transition-stage",
        "model-versions/set-tag",
    }
)
UI_PAGES = ("/experiments/", "/models/", "/experiments?", "/models?")


def _uc_call(store: Any, method: str, op: str, p: dict[str, Any]) -> dict[str, Any]:
    """Route one UC registry call to its service function (runs in a thread)."""
    r, s = uc_registry, STORAGE_ROOT
    calls: dict[tuple[str, str], Callable[[], dict[str, Any]]] = {
        ("POST", "registered-models/create"): lambda: r.create_registered_model(
            store, p.get("name"), p.get("description"), _tags(p)
        ),
        ("GET", "registered-models/get"): lambda: r.get_registered_model(store, p.get("name")),
        ("PATCH", "registered-models/update"): lambda: r.update_registered_model(
            store, p.get("name"), p.get("description")
        ),
        ("DELETE", "registered-models/delete"): lambda: r.delete_registered_model(
            store, p.get("name")
        ),
        ("GET", "registered-models/search"): lambda: r.search_registered_models(
            store, _max_results(p), p.get("page_token")
        ),
        ("POST", "registered-models/alias"): lambda: r.set_registered_model_alias(
            store, p.get("name"), p.get("alias"), p.get("version")
        ),
        ("DELETE", "registered-models/alias"): lambda: r.delete_registered_model_alias(
            store, p.get("name"), p.get("alias")
        ),
        ("GET", "registered-models/alias"): lambda: r.get_model_version_by_alias(
            store, s, p.get("name"), p.get("alias")
        ),
        ("POST", "registered-models/set-tag"): lambda: r.set_registered_model_tag(
            store, p.get("name"), str(p.get("key", "")), str(p.get("value", ""))
        ),
        ("POST", "model-versions/create"): lambda: r.create_model_version(
            store,
            s,
            p.get("name"),
            p.get("source"),
            p.get("run_id"),
            p.get("description"),
            _tags(p),
        ),
        ("GET", "model-versions/get"): lambda: r.get_model_version(
            store, s, p.get("name"), p.get("version")
        ),
        ("POST", "model-versions/finalize"): lambda: r.finalize_model_version(
            store, s, p.get("name"), p.get("version")
        ),
        ("PATCH", "model-versions/update"): lambda: r.update_model_version(
            store, s, p.get("name"), p.get("version"), p.get("description")
        ),
        ("DELETE", "model-versions/delete"): lambda: r.delete_model_version(
            store, p.get("name"), p.get("version")
        ),
        ("GET", "model-versions/search"): lambda: r.search_model_versions(
            store, s, p.get("filter"), _max_results(p), p.get("page_token")
        ),
        ("POST", "model-versions/set-tag"): lambda: r.set_model_version_tag(
            store, p.get("name"), p.get("version"), str(p.get("key", "")), str(p.get("value", ""))
        ),
        ("GET", "model-versions/get-download-uri"): lambda: {
            "artifact_uri": s + r.model_storage_path(str(p.get("name")), str(p.get("version")))
        },
        ("POST", "model-versions/emit-lineage"): dict,
        # Tells the client to move model files through the Files API paths Kiln serves.
        (
            "GET",
            "registered-models:is-databricks-sdk-models-artifact-repository-enabled",
        ): lambda: {"is_databricks_sdk_models_artifact_repository_enabled": True},
    }
    call = calls.get((method, op))
    if call is None:
        raise ResourceDoesNotExist(f"No Unity Catalog registry API {method} {op}.")
    return call()


@router.api_route(UC + "/{op:path}", methods=["GET", "POST", "PATCH", "DELETE"])
async def unity_catalog_registry(
    op: str, request: Request, ml: Ml, session: Session, _: CurrentPrincipal
) -> JSONResponse:
    """The Unity Catalog model registry (models `catalog.schema.name`, versions, aliases)."""
    params = await _params(request)
    if request.method == "POST" and op == "registered-models/create":
        # A model lives in a schema of the catalog, which must exist.
        catalog, schema, _model = uc_registry.split_model_name(params.get("name"))
        await metastore.ensure_defaults(session)
        await metastore.get_schema(session, f"{catalog}.{schema}")
    store = await ml.tracking.registry_store()
    body = await asyncio.to_thread(_uc_call, store, request.method, op, params)
    return JSONResponse(body)


@router.post(EXPERIMENTS[0] + "/create")
@router.post(EXPERIMENTS[1] + "/create")
async def create_experiment(
    request: Request, ml: Ml, session: Session, me: CurrentPrincipal
) -> JSONResponse:
    """Create an experiment: a workspace object at its name (or a notebook's experiment)."""
    p = await _params(request)
    location = p.get("artifact_location")
    if location is not None and not isinstance(location, str):
        raise InvalidParameterValue("artifact_location must be a string.")
    experiment_id = await experiment_objects.create_experiment(
        session, ml.tracking, me, p.get("name"), location, _tags(p)
    )
    return JSONResponse({"experiment_id": experiment_id})


@router.post(EXPERIMENTS[0] + "/update")
@router.post(EXPERIMENTS[1] + "/update")
async def update_experiment(
    request: Request, ml: Ml, session: Session, me: CurrentPrincipal
) -> JSONResponse:
    """Rename an experiment, moving its workspace object."""
    p = await _params(request)
    await experiment_objects.rename_experiment(
        session, ml.tracking, me, p.get("experiment_id"), p.get("new_name")
    )
    return JSONResponse({})


@router.post(EXPERIMENTS[0] + "/delete")
@router.post(EXPERIMENTS[1] + "/delete")
async def delete_experiment(
    request: Request, ml: Ml, session: Session, me: CurrentPrincipal
) -> JSONResponse:
    """Delete an experiment and its workspace object."""
    p = await _params(request)
    await experiment_objects.delete_experiment(session, ml.tracking, me, p.get("experiment_id"))
    return JSONResponse({})


@router.post(EXPERIMENTS[0] + "/restore")
@router.post(EXPERIMENTS[1] + "/restore")
async def restore_experiment(
    request: Request, ml: Ml, session: Session, me: CurrentPrincipal
) -> JSONResponse:
    """Restore a deleted experiment and its workspace object."""
    p = await _params(request)
    await experiment_objects.restore_experiment(session, ml.tracking, me, p.get("experiment_id"))
    return JSONResponse({})


async def _run_root(ml: MlServices, run_id: Any) -> str:
    if not isinstance(run_id, str) or not run_id:
        raise InvalidParameterValue("Missing required parameter 'run_id'.")
    store = await ml.tracking.tracking_store()
    run = await asyncio.to_thread(uc_registry.call_mlflow, lambda: store.get_run(run_id))
    return artifacts.run_artifact_dir(run.info.experiment_id, run_id)


def _paths(params: dict[str, Any]) -> list[str]:
    paths = params.get("path", [])
    paths = [paths] if isinstance(paths, str) else paths
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
        raise InvalidParameterValue("path must be a list of artifact paths.")
    return paths


@router.get(ARTIFACTS[0] + "/list")
@router.get(ARTIFACTS[1] + "/list")
async def list_artifacts(request: Request, ml: Ml, _: CurrentPrincipal) -> JSONResponse:
    """A run's artifacts directly under `path`."""
    params = await _params(request)
    root = await _run_root(ml, params.get("run_id"))
    relative = params.get("path") or None
    entries = await asyncio.to_thread(artifacts.list_artifacts, ml.dbfs, root, relative)
    files = []
    for e in entries:
        info: dict[str, Any] = {"path": e.path[len(root) + 1 :], "is_dir": e.is_dir}
        if not e.is_dir:
            info["file_size"] = e.size
        files.append(info)
    return JSONResponse({"root_uri": f"dbfs:{root}", "files": files})


@router.post(ARTIFACTS[0] + "/credentials-for-write")
@router.get(ARTIFACTS[0] + "/credentials-for-write")
@router.post(ARTIFACTS[0] + "/credentials-for-read")
@router.get(ARTIFACTS[0] + "/credentials-for-read")
async def artifact_credentials(request: Request, ml: Ml, _: CurrentPrincipal) -> JSONResponse:
    """Signed URLs for a run's artifacts: the Files API URL of each path, with the caller's auth."""
    params = await _params(request)
    run_id = params.get("run_id")
    root = await _run_root(ml, run_id)
    base = str(request.base_url).rstrip("/")
    auth = request.headers.get("authorization", "")
    infos = []
    for relative in _paths(params):
        path = artifacts.artifact_file(root, relative)
        await asyncio.to_thread(artifacts.confine_links, ml.dbfs, root, path)
        infos.append(
            {
                "run_id": run_id,
                "path": relative,
                "signed_uri": f"{base}/api/2.0/fs/files{quote(path)}",
                "type": "AWS_PRESIGNED_URL",
                "headers": [{"name": "Authorization", "value": auth}],
            }
        )
    return JSONResponse({"credential_infos": infos})


@router.get("/ajax-api/2.0/mlflow/get-artifact")
@router.get("/api/2.0/mlflow/get-artifact")
async def get_artifact(request: Request, ml: Ml, _: CurrentPrincipal) -> Response:
    """One artifact file of a run (what MLflow's UI downloads)."""
    params = await _params(request)
    # MLflow's UI names the run `run_uuid`.
    root = await _run_root(ml, params.get("run_id") or params.get("run_uuid"))
    relative = params.get("path")
    if not isinstance(relative, str) or not relative:
        raise InvalidParameterValue("Missing required parameter 'path'.")
    path = artifacts.artifact_file(root, relative)
    await asyncio.to_thread(artifacts.confine_links, ml.dbfs, root, path)
    entry = await asyncio.to_thread(ml.dbfs.stat, path)
    if entry is None or entry.is_dir:
        raise ResourceDoesNotExist(f"No artifact at {relative!r}.")
    handle = await asyncio.to_thread(ml.dbfs.open_read, path)

    async def body() -> Any:
        try:
            while chunk := await asyncio.to_thread(handle.read, 1 << 20):
                yield chunk
        finally:
            await asyncio.to_thread(handle.close)

    return StreamingResponse(body(), media_type="application/octet-stream")


async def _version_root(ml: MlServices, params: dict[str, Any]) -> str:
    name, version = params.get("name"), params.get("version")
    if not isinstance(name, str) or not name or not isinstance(version, str) or not version:
        raise InvalidParameterValue("Missing required parameters 'name' and 'version'.")
    store = await ml.tracking.registry_store()
    mv = await asyncio.to_thread(
        uc_registry.call_mlflow, lambda: store.get_model_version(name, version)
    )
    return artifacts.source_files_root(mv.source)


@router.get("/api/2.0/mlflow/model-versions/list-artifacts")
async def list_model_version_artifacts(
    request: Request, ml: Ml, _: CurrentPrincipal
) -> JSONResponse:
    """A workspace-registry model version's files directly under `path`."""
    params = await _params(request)
    root = await _version_root(ml, params)
    relative = params.get("path") or None
    entries = await asyncio.to_thread(artifacts.list_artifacts, ml.dbfs, root, relative)
    files = []
    for e in entries:
        info: dict[str, Any] = {"path": e.path[len(root) + 1 :], "is_dir": e.is_dir}
        if not e.is_dir:
            info["file_size"] = e.size
        files.append(info)
    return JSONResponse({"files": files})


@router.get("/api/2.0/mlflow/model-versions/get-signed-download-uri")
async def model_version_download_uri(request: Request, ml: Ml, _: CurrentPrincipal) -> JSONResponse:
    """A URL (the Files API, with the caller's auth) to download one model version file."""
    params = await _params(request)
    root = await _version_root(ml, params)
    relative = params.get("path")
    if not isinstance(relative, str) or not relative:
        raise InvalidParameterValue("Missing required parameter 'path'.")
    path = artifacts.artifact_file(root, relative)
    await asyncio.to_thread(artifacts.confine_links, ml.dbfs, root, path)
    base = str(request.base_url).rstrip("/")
    auth = request.headers.get("authorization", "")
    return JSONResponse(
        {
            "signed_uri": f"{base}/api/2.0/fs/files{quote(path)}",
            "headers": [{"name": "Authorization", "value": auth}],
        }
    )


class _MlflowServer(BaseRoute):
    """Everything else under the area's prefixes goes to MLflow's own server app."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] == UI:
            await _redirect(send, UI + "/")
            return
        if scope["path"].startswith(UI + "/"):
            page = scope["path"][len(UI) :]
            if page.startswith(UI_PAGES):
                # Links to UI pages (/mlflow/experiments/1/runs/...) name pages of its
                # hash router.
                await _redirect(send, f"{UI}/#{page}")
                return
            scope = _strip_ui_prefix(scope)
        request = Request(scope)
        ml = ml_services(request)
        principal = scope.get("state", {}).get("principal")
        if scope["method"] == "POST" and isinstance(principal, Principal):
            path = scope["path"]
            if path.endswith("/mlflow/runs/create"):
                scope, receive = await _as_user(scope, receive, principal.user_name)
            op = _registry_op(path)
            if op is not None:
                raw = await _read_body(receive)
                receive = _replay(raw, receive)
                send = _firing_webhooks(send, ml, op, raw)
        app = await ml.tracking.app()
        await app(scope, receive, _json_not_found(send, scope["path"]))

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        return (Match.FULL, {}) if scope["type"] == "http" else (Match.NONE, {})


def _registry_op(path: str) -> str | None:
    """The workspace-registry operation MLflow's handlers serve at `path`, if it fires webhooks."""
    for prefix in REGISTRY_PREFIXES:
        if path.startswith(prefix) and path[len(prefix) :] in REGISTRY_EVENT_OPS:
            return path[len(prefix) :]
    return None


def _firing_webhooks(send: Send, ml: MlServices, op: str, raw: bytes) -> Send:
    """A send that, once MLflow answers 200, fires the registry webhooks of the call."""
    status = 0
    chunks: list[bytes] = []

    async def wrapped(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body" and status == 200:
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                await _fire(ml, op, raw, b"".join(chunks))
        await send(message)

    return wrapped


async def _fire(ml: MlServices, op: str, raw: bytes, answer: bytes) -> None:
    try:
        request, response = json.loads(raw or b"{}"), json.loads(answer or b"{}")
    except ValueError:
        return
    if isinstance(request, dict) and isinstance(response, dict):
        events, data = webhooks.mlflow_events(op, request, response)
        await ml.webhooks.fire(events, data)


def _strip_ui_prefix(scope: Scope) -> Scope:
    """/mlflow/<rest> → /<rest>: MLflow's UI (index.html, static-files, graphql) is at its root."""
    path: str = scope["path"][len(UI) :]
    raw: bytes | None = scope.get("raw_path")
    if raw is not None and raw.startswith(UI.encode()):
        raw = raw[len(UI) :]
    return dict(scope, path=path, raw_path=raw)


async def _redirect(send: Send, location: str) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 307,
            "headers": [(b"location", location.encode()), (b"content-length", b"0")],
        }
    )
    await send({"type": "http.response.body", "body": b""})


def _json_not_found(send: Send, path: str) -> Send:
    """A send that turns MLflow's HTML 404 page into Databricks' JSON error body."""
    replacing = False

    async def wrapped(message: Message) -> None:
        nonlocal replacing
        if message["type"] == "http.response.start" and message["status"] == 404:
            headers = dict(message.get("headers", []))
            replacing = headers.get(b"content-type", b"").startswith(b"text/html")
            if replacing:
                body = json.dumps(
                    {"error_code": "ENDPOINT_NOT_FOUND", "message": f"No API found for {path}."}
                ).encode()
                await send(
                    {
                        "type": "http.response.start",
                        "status": 404,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        if replacing:
            return
        await send(message)

    return wrapped


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(raw: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": raw, "more_body": False}
        return await receive()

    return replay


async def _as_user(scope: Scope, receive: Receive, user_name: str) -> tuple[Scope, Receive]:
    """A receive that replays the run-creation body with the token's user as the run's user."""
    raw = await _read_body(receive)
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        body = None
    if isinstance(body, dict):
        body["user_id"] = user_name
        tags = [t for t in body.get("tags") or [] if t.get("key") != "mlflow.user"]
        body["tags"] = [*tags, {"key": "mlflow.user", "value": user_name}]
        raw = json.dumps(body).encode()
    headers = [(k, v) for k, v in scope["headers"] if k != b"content-length"]
    headers.append((b"content-length", str(len(raw)).encode()))
    return dict(scope, headers=headers), _replay(raw, receive)


# Databricks' workspace registry APIs, before the catch-all hands the rest to MLflow.
router.include_router(mlflow_registry.router)
router.routes.append(_MlflowServer())
