"""The feature store's control plane: /api/2.0/feature-store/feature-tables/...

The feature-engineering client inside a context reports feature tables it creates and writes,
and the training sets and models that use them; `get` answers Databricks' FeatureTable shape
(with notebook_producers and job_producers) and `lineage` the consuming models and notebooks;
`publish` fills the online store that serving endpoints look features up in.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from kiln.errors import MalformedRequest
from kiln.ml import features
from kiln.server.deps import CurrentPrincipal, Session
from kiln.server.routers.ml_deps import Ml

router = APIRouter(tags=["feature-store"])

TABLES = "/api/2.0/feature-store/feature-tables"


async def _json_object(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        raise MalformedRequest("Request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise MalformedRequest("Request body must be a JSON object.")
    return body


@router.post(TABLES + "/create")
async def create_table(request: Request, session: Session, me: CurrentPrincipal) -> JSONResponse:
    """Record a new feature table and the notebook or job creating it."""
    row = await features.create_table(session, me.user_name, await _json_object(request))
    return JSONResponse({"feature_table": await features.get_table(session, row.name)})


@router.post(TABLES + "/write")
async def write_table(request: Request, session: Session, _: CurrentPrincipal) -> JSONResponse:
    """Record a write of a feature table by the client's notebook or job."""
    row = await features.record_write(session, await _json_object(request))
    return JSONResponse({"feature_table": await features.get_table(session, row.name)})


@router.post(TABLES + "/consume")
async def consume(request: Request, session: Session, _: CurrentPrincipal) -> JSONResponse:
    """Record a training set or a logged model version that uses feature tables."""
    await features.record_consumers(session, await _json_object(request))
    return JSONResponse({})


@router.get(TABLES + "/get")
async def get_table(name: str, session: Session, _: CurrentPrincipal) -> JSONResponse:
    """One feature table with its producers."""
    return JSONResponse({"feature_table": await features.get_table(session, name)})


@router.get(TABLES + "/lineage")
async def lineage(name: str, session: Session, _: CurrentPrincipal) -> JSONResponse:
    """The model versions and notebooks that consume a feature table."""
    return JSONResponse(await features.table_lineage(session, name))


@router.post(TABLES + "/publish")
async def publish_table(
    request: Request, session: Session, ml: Ml, _: CurrentPrincipal
) -> JSONResponse:
    """Copy a feature table's latest values per primary key into the online store."""
    body = await _json_object(request)
    return JSONResponse(await features.publish_table(session, ml.serving.online_store, body))


@router.post(TABLES + "/delete")
async def delete_table(
    request: Request, session: Session, ml: Ml, _: CurrentPrincipal
) -> JSONResponse:
    """Forget a feature table, its lineage and its online rows."""
    row = await features.find_table(session, (await _json_object(request)).get("name"))
    await features.delete_table(session, row.name)
    await ml.serving.online_store.drop(row.name)
    return JSONResponse({})
