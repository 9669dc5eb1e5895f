"""Every router the app mounts, in one list."""

from fastapi import APIRouter

from kiln.server.routers import dbfs, files, health, scim, secrets, tokens, workspace

ROUTERS: list[APIRouter] = [
    health.router,
    tokens.router,
    scim.router,
    workspace.router,
    dbfs.router,
    files.router,
    secrets.router,
]

__all__ = ["ROUTERS"]
