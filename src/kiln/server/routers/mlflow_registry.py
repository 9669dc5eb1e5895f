"""The workspace model registry's Databricks APIs (`w.model_registry`) that OSS MLflow lacks.

Transition requests, comments, the Databricks stage transition and registered-model view
(`kiln.ml.workspace_registry`), and registry webhooks (`kiln.ml.webhooks`). Included into the
mlflow area's router ahead of the catch-all that hands everything else to MLflow.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from kiln.errors import ResourceDoesNotExist
from kiln.ml import webhooks
from kiln.ml import workspace_registry as wr
from kiln.ml.uc_registry import call_mlflow
from kiln.principal import require_admin
from kiln.server.deps import CurrentPrincipal, Session
from kiln.server.routers.ml_deps import Ml
from kiln.server.routers.mlflow_params import request_params

router = APIRouter(tags=["mlflow"])

API = "/api/2.0/mlflow"
REQUESTS = API + "/transition-requests"
COMMENTS = API + "/comments"
WEBHOOKS = API + "/registry-webhooks"


def _event_data(p: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"model_name": p.get("name"), "version": str(p.get("version")), **extra}


async def _registry_call(request: Request, ml: Ml) -> tuple[dict[str, Any], Any]:
    params = await request_params(request)
    return params, await ml.tracking.registry_store()


@router.post(REQUESTS + "/create")
async def create_transition_request(
    request: Request, ml: Ml, session: Session, me: CurrentPrincipal
) -> JSONResponse:
    """Request a stage transition for a model version."""
    p, store = await _registry_call(request, ml)
    body = await wr.create_transition_request(session, store, me, p)
    stage = body["request"]["to_stage"]
    data = _event_data(p, to_stage=stage, text=body["request"].get("comment"))
    await ml.webhooks.fire(webhooks.stage_events("request", stage), data)
    return JSONResponse(body)


@router.get(REQUESTS + "/list")
async def list_transition_requests(
    request: Request, ml: Ml, session: Session, me: CurrentPrincipal
) -> JSONResponse:
    """A model version's open transition requests."""
    p, store = await _registry_call(request, ml)
    return JSONResponse(await wr.list_transition_requests(session, store, me, p))


@router.post(REQUESTS + "/approve")
async def approve_transition_request(
    request: Request, ml: Ml, session: Session, me: CurrentPrincipal
) -> JSONResponse:
    """Approve an open transition request: the version moves to the stage."""
    p, store = await _registry_call(request, ml)
    body = await wr.approve_transition_request(session, store, me, p)
    activity = body["activity"]
    data = _event_data(p, to_stage=activity["to_stage"], from_stage=activity.get("from_stage"))
    await ml.webhooks.fire(webhooks.stage_events("transition", activity["to_stage"]), data)
    return JSONResponse(body)


@router.post(REQUESTS + "/reject")
async def reject_transition_request(
    request: Request, ml: Ml, session: Session, me: CurrentPrincipal
) -> JSONResponse:
    """Reject an open transition request."""
    p, store = await _registry_call(request, ml)
    return JSONResponse(await wr.reject_transition_request(session, store, me, p))


@router.delete(REQUESTS + "/delete")
async def delete_transition_request(
    request: Request, ml: Ml, session: Session, me: CurrentPrincipal
) -> JSONResponse:
    """Cancel an open transition request."""
    p, store = await _registry_call(request, ml)
    return JSONResponse(await wr.delete_transition_request(session, store, me, p))


@router.post(API + "/databricks/model-versions/transition-stage")
async def transition_stage(
    request: Request, ml: Ml, session: Session, me: CurrentPrincipal
) -> JSONResponse:
    """Move a model version to a stage, recording the activity."""
    p, store = await _registry_call(request, ml)
    body = await wr.transition_stage(session, store, me, p)
    stage = body["model_version_databricks"]["current_stage"]
    data = _event_data(p, to_stage=stage, text=p.get("comment"))
    await ml.webhooks.fire(webhooks.stage_events("transition", stage), data)
    return JSONResponse(body)


@router.get(API + "/databricks/registered-models/get")
async def get_model(request: Request, ml: Ml, _: CurrentPrincipal) -> JSONResponse:
    """A registered model with Databricks' fields (permission level, id)."""
    p, store = await _registry_call(request, ml)
    return JSONResponse(await wr.get_model_databricks(store, p))


@router.post(COMMENTS + "/create")
async def create_comment(
    request: Request, ml: Ml, session: Session, me: CurrentPrincipal
) -> JSONResponse:
    """Comment on a model version."""
    p, store = await _registry_call(request, ml)
    body = await wr.create_comment(session, store, me, p)
    await ml.webhooks.fire(["COMMENT_CREATED"], _event_data(p, text=body["comment"]["comment"]))
    return JSONResponse(body)


@router.patch(COMMENTS + "/update")
async def update_comment(request: Request, session: Session, me: CurrentPrincipal) -> JSONResponse:
    """Edit a comment."""
    return JSONResponse(await wr.update_comment(session, me, await request_params(request)))


@router.delete(COMMENTS + "/delete")
async def delete_comment(request: Request, session: Session, me: CurrentPrincipal) -> JSONResponse:
    """Delete a comment."""
    await wr.delete_comment(session, me, await request_params(request))
    return JSONResponse({})


@router.post(WEBHOOKS + "/create")
async def create_webhook(
    request: Request, ml: Ml, session: Session, me: CurrentPrincipal
) -> JSONResponse:
    """Create a registry webhook (of one model, or registry-wide)."""
    p = await request_params(request)
    name = p.get("model_name")
    exists = False
    if isinstance(name, str) and name:
        store = await ml.tracking.registry_store()
        try:
            await asyncio.to_thread(call_mlflow, lambda: store.get_registered_model(name))
            exists = True
        except ResourceDoesNotExist:
            exists = False
    else:
        # A registry-wide webhook sees every model's events.
        require_admin(me)
    return JSONResponse(await webhooks.create_webhook(session, ml.webhooks.box, p, exists))


@router.get(WEBHOOKS + "/list")
async def list_webhooks(request: Request, session: Session, _: CurrentPrincipal) -> JSONResponse:
    """Registry webhooks, by model and events."""
    return JSONResponse(await webhooks.list_webhooks(session, await request_params(request)))


@router.patch(WEBHOOKS + "/update")
async def update_webhook(
    request: Request, ml: Ml, session: Session, _: CurrentPrincipal
) -> JSONResponse:
    """Change a registry webhook."""
    p = await request_params(request)
    return JSONResponse(await webhooks.update_webhook(session, ml.webhooks.box, p))


@router.delete(WEBHOOKS + "/delete")
async def delete_webhook(request: Request, session: Session, _: CurrentPrincipal) -> JSONResponse:
    """Delete a registry webhook."""
    await webhooks.delete_webhook(session, await request_params(request))
    return JSONResponse({})


@router.post(WEBHOOKS + "/test")
async def test_webhook(
    request: Request, ml: Ml, session: Session, _: CurrentPrincipal
) -> JSONResponse:
    """Deliver a test event to a webhook now; the receiver's status and body."""
    p = await request_params(request)
    row = await webhooks.get_webhook(session, p.get("id"))
    return JSONResponse(await ml.webhooks.test(row, p.get("event")))
