"""Kiln's Spark UI sign-in for browser tabs (/api/2.0/kiln/driver-proxy-grants).

A new tab cannot send the token header, so the web app asks for a one-time, 60-second URL
(`/driver-proxy/o/<workspace>/<cluster>/<port>/?kiln_grant=...`); the driver proxy (`sign_in` below)
trades the grant for an HttpOnly, SameSite=Strict cookie scoped to exactly that proxy path.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, ConfigDict

from kiln.compute import proxy_grants
from kiln.errors import Unauthenticated
from kiln.identity import Principal
from kiln.server.deps import CurrentPrincipal, Session, State

__all__ = ["GrantRequest", "GrantResponse", "router", "sign_in"]

router = APIRouter(prefix="/api/2.0/kiln/driver-proxy-grants", tags=["clusters"])

_SIGN_IN = proxy_grants.ProxySignIn()


class GrantRequest(BaseModel):
    """The cluster, and the UI port (default: the cluster's Spark UI)."""

    model_config = ConfigDict(extra="ignore")

    cluster_id: Any = None
    port: Any = None


class GrantResponse(BaseModel):
    """The one-time URL and when its grant expires (epoch milliseconds)."""

    url: str
    port: int
    expires_at: int


@router.post("")
async def create_grant(
    body: GrantRequest, session: Session, state: State, me: CurrentPrincipal
) -> GrantResponse:
    """A one-time, 60-second link to a running cluster's UI for a caller who may attach to it."""
    grant = await proxy_grants.issue(session, state.compute, me, body.cluster_id, body.port)
    return GrantResponse(url=grant.url, port=grant.port, expires_at=grant.expires_at * 1000)


async def sign_in(
    request: Request, session: Session, state: State, cluster_id: str, port: int
) -> Principal | Response:
    """The driver proxy's caller without a token: a grant becomes a cookie (and a redirect to
    the same URL without the grant); a cookie for exactly this path names its user."""
    path = proxy_grants.cookie_path(state.compute, cluster_id, port)
    own_path = request.url.path.startswith(path)
    grant = request.query_params.get(proxy_grants.GRANT_PARAMETER)
    if grant is not None:
        if not own_path:
            raise Unauthenticated("This Spark UI link is not valid for this path.")
        _, cookie = _SIGN_IN.redeem(grant, cluster_id, port)
        rest = urlencode(
            [
                (k, v)
                for k, v in request.query_params.multi_items()
                if k != proxy_grants.GRANT_PARAMETER
            ]
        )
        response = RedirectResponse(
            request.url.path + (f"?{rest}" if rest else ""), status_code=303
        )
        response.set_cookie(
            proxy_grants.COOKIE,
            cookie,
            max_age=proxy_grants.COOKIE_SECONDS,
            path=path,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return response
    value = request.cookies.get(proxy_grants.COOKIE)
    user_id = _SIGN_IN.check_cookie(value, cluster_id, port) if value and own_path else None
    if user_id is None:
        raise Unauthenticated("Missing or invalid access token.")
    return await proxy_grants.principal_of(session, user_id)
