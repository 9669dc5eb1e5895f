"""The Spark UI through the control plane: `/driver-proxy/o/<org>/<cluster>/<port>/...` and
`/driver-proxy-api/o/<org>/<cluster>/<port>/...`, as Databricks names them.

Spark binds its UI to loopback, so this authenticated, streaming reverse proxy is the only
way to it. The caller's Kiln token is never passed on.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask

from kiln.compute import clusters
from kiln.identity import Principal
from kiln.server.deps import Session, State
from kiln.server.routers.ui_proxy_grant import sign_in

router = APIRouter(tags=["clusters"])

_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"]
# Hop-by-hop headers, and the caller's credentials, stop here.
_DROP_REQUEST = {
    "host",
    "authorization",
    "cookie",
    "x-forwarded-context",
    "connection",
    "keep-alive",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
}
_DROP_RESPONSE = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "trailer",
    "transfer-encoding",
    "upgrade",
}


async def _body(request: Request) -> AsyncIterator[bytes]:
    async for chunk in request.stream():
        yield chunk


async def proxy(
    request: Request,
    org_id: str,
    cluster_id: str,
    port: int,
    session: Session,
    state: State,
    path: str = "",
) -> Response:
    """Stream a request to a cluster's UI port and its answer back."""
    me = request.scope.get("state", {}).get("principal")
    if not isinstance(me, Principal):
        # A browser tab without the token header: a Spark UI grant or its cookie.
        signed_in = await sign_in(request, session, state, cluster_id, port)
        if isinstance(signed_in, Response):
            return signed_in
        me = signed_in
    base = await clusters.proxy_target(session, state.compute, me, org_id, cluster_id, port)
    url = f"{base}/{path}" + (f"?{request.url.query}" if request.url.query else "")
    headers = [(k, v) for k, v in request.headers.items() if k.lower() not in _DROP_REQUEST]
    prefix = request.url.path.split(f"/{cluster_id}/{port}", 1)[0] + f"/{cluster_id}/{port}"
    # Spark's UI prefixes its links with this (as behind Knox), so they come back through here.
    headers.append(("x-forwarded-context", prefix))
    if "accept-encoding" not in request.headers:
        # httpx would ask for gzip by default and the raw bytes pass through undecoded.
        headers.append(("accept-encoding", "identity"))
    # Imported here: httpx pulls in rich and pygments (~0.3 s), off the server's start path.
    import httpx

    client = httpx.AsyncClient(timeout=httpx.Timeout(60.0, connect=5.0))
    upstream = client.build_request(
        request.method,
        url,
        headers=headers,
        content=_body(request) if request.method not in ("GET", "HEAD") else None,
    )
    try:
        response = await client.send(upstream, stream=True)
    except httpx.HTTPError:
        await client.aclose()
        raise
    out_headers = {k: v for k, v in response.headers.items() if k.lower() not in _DROP_RESPONSE}
    location = out_headers.get("location")
    if location and location.startswith(base):
        rest = location[len(base) :]
        out_headers["location"] = rest if rest.startswith(prefix + "/") else prefix + rest

    async def close() -> None:
        await response.aclose()
        await client.aclose()

    return StreamingResponse(
        response.aiter_raw(),
        status_code=response.status_code,
        headers=out_headers,
        background=BackgroundTask(close),
    )


for _kind in ("driver-proxy", "driver-proxy-api"):
    router.add_api_route(
        f"/{_kind}/o/{{org_id}}/{{cluster_id}}/{{port}}/{{path:path}}",
        proxy,
        methods=_METHODS,
        operation_id=f"{_kind.replace('-', '_')}",
    )
    router.add_api_route(
        f"/{_kind}/o/{{org_id}}/{{cluster_id}}/{{port}}",
        proxy,
        methods=_METHODS,
        operation_id=f"{_kind.replace('-', '_')}_root",
    )
