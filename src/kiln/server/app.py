"""The control plane's ASGI app: lifespan, middleware, error rendering and routers."""

from __future__ import annotations

import asyncio
import gc
import importlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from sqlalchemy.ext.asyncio import AsyncSession

from kiln import __version__
from kiln.compute import Compute
from kiln.dbfs import DbfsStore
from kiln.identity import Principal, bootstrap_admin
from kiln.identity.auth_cache import PrincipalCache
from kiln.identity.users import get_user_by_name
from kiln.jobs import Jobs
from kiln.secrets import SecretBox
from kiln.server.aliases import AliasMiddleware, add_aliases_to_openapi
from kiln.server.errors import install_error_handlers
from kiln.server.lazy_routes import LazyArea
from kiln.server.middleware import AuthMiddleware, FramingMiddleware
from kiln.server.routers import ALIASES, AREAS, EAGER_MODULES
from kiln.server.state import AppState
from kiln.server.webui import WebUiRoute, is_public
from kiln.settings import KilnSettings
from kiln.store import Database, upgrade

__all__ = ["create_app"]

log = logging.getLogger("kiln.server")


async def build_state(settings: KilnSettings) -> AppState:
    """Migrate the store, open it, and create the first admin on a fresh data dir."""
    data_dir = settings.resolved_data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    await asyncio.to_thread(upgrade, settings.sqlalchemy_url)
    db = Database(settings.sqlalchemy_url)
    async with db.session() as session:
        created = await bootstrap_admin(session, settings.admin_user, settings.admin_token_path)
        if settings.demo:
            await seed_admin_demo(session, settings.admin_user)
    if created:
        log.info(
            "created admin user %s; token in %s", settings.admin_user, settings.admin_token_path
        )
    principals = PrincipalCache()
    principals.watch(db.session_class)
    dbfs = DbfsStore(settings.dbfs_root_url)
    compute = Compute(settings, db, dbfs)
    return AppState(
        settings=settings,
        db=db,
        principals=principals,
        dbfs=dbfs,
        secret_box=SecretBox.from_key_file(settings.secret_key_path),
        compute=compute,
        jobs=Jobs(settings, db, compute),
    )


async def seed_admin_demo(session: AsyncSession, admin_user: str) -> None:
    """Give the first admin the demo folder (idempotent)."""
    from kiln.workspace.demo import seed_demo

    user = await get_user_by_name(session, admin_user)
    if user is not None:
        await seed_demo(session, Principal(user.id, user.user_name, True, ""))


def create_app(settings: KilnSettings) -> FastAPI:
    """The Kiln server app for `settings` (its state is built when the lifespan starts)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = await build_state(settings)
        app.state.kiln = state
        # Adopt clusters a previous server left running; reconcile the dead ones.
        await state.compute.start()
        # Resume the runs a previous server left; start the job scheduler.
        await state.jobs.start()
        # What startup built lives as long as the server: out of the collector's reach, a full
        # collection no longer walks it (it paused the server ~95 ms at a time, several ms
        # added to each of a for_each's iterations when one landed inside it).
        gc.freeze()
        try:
            yield
        finally:
            try:
                await state.jobs.stop()
                # Built on the first ML request (kiln.server.routers.ml_deps): flush buffered
                # inference-table rows and stop the model scorers.
                ml = getattr(app.state, "kiln_ml", None)
                if ml is not None:
                    await ml.stop()
                # A clean stop leaves no Spark process behind.
                await state.compute.stop()
            finally:
                await state.db.dispose()

    app = FastAPI(
        title="Kiln",
        version=__version__,
        description="A self-hosted lakehouse workspace speaking the Databricks REST API.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    install_error_handlers(app)
    for module in EAGER_MODULES:
        app.include_router(importlib.import_module(module).router)
    areas = [LazyArea(area) for area in AREAS]
    app.router.routes.extend(areas)
    # Last: the web app answers only its own paths (/, /assets/..., its client routes).
    app.router.routes.append(WebUiRoute())
    app.add_middleware(
        AuthMiddleware,
        db=lambda: app.state.kiln.db,
        cache=lambda: app.state.kiln.principals,
        public=is_public,
    )
    app.add_middleware(FramingMiddleware, limits=settings.limits)
    # Outermost, so framing, auth and routing all see the canonical path.
    app.add_middleware(AliasMiddleware, aliases=ALIASES)
    _complete_openapi(app, areas)
    return app


def _complete_openapi(app: FastAPI, areas: list[LazyArea]) -> None:
    """Make /openapi.json cover every area (loading them all) and list the alias paths."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            routes = [r for r in app.routes if not isinstance(r, LazyArea)]
            for area in areas:
                routes.extend(area.router.routes)
            document = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=routes,
            )
            add_aliases_to_openapi(document, ALIASES)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
