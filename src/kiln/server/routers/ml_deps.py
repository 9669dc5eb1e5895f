"""The ML areas' dependency: their services, built on the first request that needs them.

The services hang off the app (not AppState) so that nothing of the ML area, MLflow above all,
is built or imported at server start.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from kiln.ml import MlServices
from kiln.server.state import AppState

__all__ = ["Ml", "ml_services"]


def ml_services(request: Request) -> MlServices:
    """The app's ML services, created on first use."""
    app_state = request.app.state
    ml = getattr(app_state, "kiln_ml", None)
    if not isinstance(ml, MlServices):
        kiln: AppState = app_state.kiln
        ml = MlServices.build(kiln.settings, kiln.dbfs, kiln.db)
        app_state.kiln_ml = ml
    return ml


async def _ml(request: Request) -> MlServices:
    return ml_services(request)


Ml = Annotated[MlServices, Depends(_ml)]
