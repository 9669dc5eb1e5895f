"""Model serving: /api/2.0/serving-endpoints and /serving-endpoints/{name}/invocations.

Endpoint configs keep Databricks' open-ended wire shape (served_entities, traffic_config,
auto_capture_config), so they are validated by kiln.ml.serving.config rather than a pydantic
schema; responses are the same shape databricks-sdk's `ServingEndpointDetailed` reads.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from kiln.errors import MalformedRequest
from kiln.server.deps import CurrentPrincipal
from kiln.server.routers.ml_deps import Ml

router = APIRouter(tags=["serving"])

ENDPOINTS = "/api/2.0/serving-endpoints"


async def _json_object(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        raise MalformedRequest("Request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise MalformedRequest("Request body must be a JSON object.")
    return body


@router.post(ENDPOINTS)
async def create_endpoint(request: Request, ml: Ml, me: CurrentPrincipal) -> JSONResponse:
    """Create a serving endpoint; its config deploys in the background."""
    return JSONResponse(await ml.serving.create(me, await _json_object(request)))


@router.get(ENDPOINTS)
async def list_endpoints(ml: Ml, _: CurrentPrincipal) -> JSONResponse:
    """Every serving endpoint."""
    return JSONResponse({"endpoints": await ml.serving.list()})


@router.get(ENDPOINTS + "/{name}")
async def get_endpoint(name: str, ml: Ml, _: CurrentPrincipal) -> JSONResponse:
    """One serving endpoint with its config, pending config and state."""
    return JSONResponse(await ml.serving.get(name))


@router.put(ENDPOINTS + "/{name}/config")
async def update_config(name: str, request: Request, ml: Ml, _: CurrentPrincipal) -> JSONResponse:
    """Deploy a new config; the current one keeps serving until it is ready."""
    return JSONResponse(await ml.serving.update_config(name, await _json_object(request)))


@router.delete(ENDPOINTS + "/{name}")
async def delete_endpoint(name: str, ml: Ml, _: CurrentPrincipal) -> JSONResponse:
    """Delete an endpoint and stop its processes."""
    await ml.serving.delete(name)
    return JSONResponse({})


@router.post("/serving-endpoints/{name}/invocations")
async def invocations(name: str, request: Request, ml: Ml, _: CurrentPrincipal) -> Response:
    """Score a request on the served entity the endpoint's traffic split picks."""
    result = await ml.serving.query(name, await request.body())
    return Response(
        result.body,
        status_code=result.status,
        media_type="application/json",
        headers={"served-model-name": result.served_entity},
    )
