"""Every router the app mounts, in one list."""

from fastapi import APIRouter

from kiln.server.routers import (
    clusters,
    dbfs,
    driver_proxy,
    files,
    health,
    libraries,
    pools,
    scim,
    secrets,
    tokens,
    workspace,
)

ROUTERS: list[APIRouter] = [
    health.router,
    tokens.router,
    scim.router,
    workspace.router,
    dbfs.router,
    files.router,
    secrets.router,
    clusters.router,
    libraries.router,
    pools.router,
    driver_proxy.router,
]

__all__ = ["ROUTERS"]
