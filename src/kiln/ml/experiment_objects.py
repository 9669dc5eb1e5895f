"""Experiments as objects of the workspace tree, as in Databricks.

An experiment named `/Users/<user>/my-exp` is a workspace object of type MLFLOW_EXPERIMENT at
that path: its folder must exist, no other object may hold the path, renaming moves it,
deleting (or restoring) the experiment removes (or puts back) the object, and deleting the
object or a folder above it deletes the experiment. An experiment named exactly a notebook's
path is that notebook's experiment (Databricks' notebook experiment): the notebook itself is
its object, and deleting the notebook deletes the experiment.

Kiln's tree and MLflow's store are two databases: the workspace row is written first inside
the request's transaction, then MLflow's change; if MLflow refuses, the request fails and the
row is rolled back, so neither side is left ahead of the other.
"""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from kiln.errors import (
    InvalidParameterValue,
    PermissionDenied,
    ResourceAlreadyExists,
    ResourceDoesNotExist,
)
from kiln.ml.experiments import check_experiment_name
from kiln.ml.tracking import MlflowTracking
from kiln.ml.uc_registry import call_mlflow
from kiln.principal import Principal
from kiln.store.models import WorkspaceObject, now_utc
from kiln.workspace import ObjectType
from kiln.workspace import delete as delete_workspace_object
from kiln.workspace.tree import (
    NewObject,
    can_write,
    ensure_home,
    get_object,
    parent_of,
    put_object,
    resolve_path,
    subtree,
)

__all__ = [
    "EXPERIMENT_TYPE_TAG",
    "create_experiment",
    "delete_experiment",
    "delete_workspace_path",
    "rename_experiment",
    "restore_experiment",
]

# Databricks tags every experiment with its kind: a workspace experiment or a notebook's.
EXPERIMENT_TYPE_TAG = "mlflow.experimentType"
NOTEBOOK_EXPERIMENT = "NOTEBOOK"


async def _row(session: AsyncSession, path: str) -> WorkspaceObject | None:
    return await session.scalar(select(WorkspaceObject).where(WorkspaceObject.path == path))


def _tag_entities(tags: list[dict[str, Any]]) -> list[Any]:
    from mlflow.entities import ExperimentTag

    return [ExperimentTag(str(t["key"]), str(t.get("value", ""))) for t in tags]


async def create_experiment(
    session: AsyncSession,
    tracking: MlflowTracking,
    actor: Principal,
    name: object,
    artifact_location: str | None,
    tags: list[dict[str, Any]],
) -> str:
    """Create an experiment and its workspace object (or a notebook's experiment); its id."""
    path = check_experiment_name(actor, name)
    await ensure_home(session, actor)
    existing = await _row(session, path)
    kind = ObjectType.MLFLOW_EXPERIMENT.value
    if existing is not None and existing.object_type == ObjectType.NOTEBOOK:
        kind = NOTEBOOK_EXPERIMENT
    else:
        await put_object(
            session, actor, NewObject(path, ObjectType.MLFLOW_EXPERIMENT), overwrite=False
        )
    tags = [t for t in tags if t.get("key") != EXPERIMENT_TYPE_TAG]
    tags.append({"key": EXPERIMENT_TYPE_TAG, "value": kind})
    store = await tracking.tracking_store()
    entities = _tag_entities(tags)
    experiment_id: str = await asyncio.to_thread(
        call_mlflow, lambda: store.create_experiment(path, artifact_location or None, entities)
    )
    return experiment_id


async def _experiment(tracking: MlflowTracking, experiment_id: object) -> Any:
    if not isinstance(experiment_id, str | int) or not str(experiment_id):
        raise InvalidParameterValue("Missing required parameter 'experiment_id'.")
    store = await tracking.tracking_store()
    return await asyncio.to_thread(call_mlflow, lambda: store.get_experiment(str(experiment_id)))


def _path_of(actor: Principal, experiment: Any) -> str | None:
    """The workspace path an experiment's name is (None for non-path names like Default)."""
    name = experiment.name
    if not isinstance(name, str) or not name.startswith("/"):
        return None
    if not can_write(actor, name):
        raise PermissionDenied(
            f"User {actor.user_name} does not have MANAGE permission on experiment {name}."
        )
    return name


def _is_notebook_experiment(experiment: Any) -> bool:
    return bool(experiment.tags.get(EXPERIMENT_TYPE_TAG) == NOTEBOOK_EXPERIMENT)


async def _require_free(session: AsyncSession, actor: Principal, path: str) -> None:
    """The path's folder exists and nothing holds the path yet."""
    parent = parent_of(path)
    try:
        folder = await get_object(session, actor, parent)
    except ResourceDoesNotExist:
        folder = None
    if folder is None or folder.object_type != ObjectType.DIRECTORY:
        raise ResourceDoesNotExist(f"The parent folder ({parent}) does not exist.")
    if await _row(session, path) is not None:
        raise ResourceAlreadyExists(f"Path ({path}) already exists.")


async def rename_experiment(
    session: AsyncSession,
    tracking: MlflowTracking,
    actor: Principal,
    experiment_id: object,
    new_name: object,
) -> None:
    """Rename an experiment, moving its workspace object."""
    experiment = await _experiment(tracking, experiment_id)
    old = _path_of(actor, experiment)
    new = check_experiment_name(actor, new_name)
    await ensure_home(session, actor)
    if old is not None and _is_notebook_experiment(experiment):
        raise InvalidParameterValue(
            f"Experiment {old} is a notebook's experiment: rename the notebook instead."
        )
    if new != old:
        await _require_free(session, actor, new)
        row = await _row(session, old) if old is not None else None
        if row is not None and row.object_type == ObjectType.MLFLOW_EXPERIMENT:
            row.path, row.parent_path, row.modified_at = new, parent_of(new), now_utc()
            await session.flush()
        else:
            await put_object(
                session, actor, NewObject(new, ObjectType.MLFLOW_EXPERIMENT), overwrite=False
            )
    store = await tracking.tracking_store()
    await asyncio.to_thread(
        call_mlflow, lambda: store.rename_experiment(experiment.experiment_id, new)
    )


async def delete_experiment(
    session: AsyncSession, tracking: MlflowTracking, actor: Principal, experiment_id: object
) -> None:
    """Delete an experiment (restorable) and remove its workspace object."""
    experiment = await _experiment(tracking, experiment_id)
    path = _path_of(actor, experiment)
    if path is not None and not _is_notebook_experiment(experiment):
        row = await _row(session, path)
        if row is not None and row.object_type == ObjectType.MLFLOW_EXPERIMENT:
            await session.delete(row)
            await session.flush()
    store = await tracking.tracking_store()
    await asyncio.to_thread(call_mlflow, lambda: store.delete_experiment(experiment.experiment_id))


async def restore_experiment(
    session: AsyncSession, tracking: MlflowTracking, actor: Principal, experiment_id: object
) -> None:
    """Restore a deleted experiment and put its workspace object back."""
    experiment = await _experiment(tracking, experiment_id)
    path = _path_of(actor, experiment)
    if path is not None and experiment.lifecycle_stage == "deleted":
        await ensure_home(session, actor)
        if _is_notebook_experiment(experiment):
            row = await _row(session, path)
            if row is None or row.object_type != ObjectType.NOTEBOOK:
                raise ResourceDoesNotExist(f"The notebook ({path}) of this experiment is gone.")
        else:
            await _require_free(session, actor, path)
            await put_object(
                session, actor, NewObject(path, ObjectType.MLFLOW_EXPERIMENT), overwrite=False
            )
    store = await tracking.tracking_store()
    await asyncio.to_thread(call_mlflow, lambda: store.restore_experiment(experiment.experiment_id))


async def delete_workspace_path(
    session: AsyncSession,
    tracking: MlflowTracking,
    actor: Principal,
    raw_path: str,
    *,
    recursive: bool,
) -> None:
    """`workspace/delete`: the object (and what is below it), with the experiments it holds."""
    path = resolve_path(raw_path)
    await ensure_home(session, actor)
    row = await get_object(session, actor, path)
    rows = [row, *(await subtree(session, actor, path))] if recursive else [row]
    experiments = [r.path for r in rows if r.object_type == ObjectType.MLFLOW_EXPERIMENT]
    if tracking.has_store():
        # Notebooks may have experiments too; with no MLflow store yet, none can.
        experiments += [r.path for r in rows if r.object_type == ObjectType.NOTEBOOK]
    await delete_workspace_object(session, actor, raw_path, recursive=recursive)
    if not experiments:
        return
    store = await tracking.tracking_store()
    await asyncio.to_thread(_delete_named, store, experiments)


def _delete_named(store: Any, names: list[str]) -> None:
    def delete_all() -> None:
        for name in names:
            experiment = store.get_experiment_by_name(name)
            if experiment is not None and experiment.lifecycle_stage == "active":
                store.delete_experiment(experiment.experiment_id)

    call_mlflow(delete_all)
