"""The Unity Catalog model registry MLflow 3 uses with tracking URI `databricks`.

OSS MLflow has no `/api/2.0/mlflow/unity-catalog/...` routes, so Kiln answers them over MLflow's
own registry store (models and versions live in MLflow's tables, named `catalog.schema.model`).
A version's files live in the DBFS root at `/Models/<catalog>/<schema>/<model>/<version>`, the
Files API path MLflow's `DatabricksSDKModelsArtifactRepository` reads and writes (Kiln tells the
client to use that repository). Every function takes MLflow's SqlAlchemyStore and is blocking:
callers run it in a thread.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

from kiln.errors import (
    BadRequest,
    InvalidParameterValue,
    KilnError,
    ResourceAlreadyExists,
    ResourceDoesNotExist,
)

__all__ = [
    "call_mlflow",
    "create_model_version",
    "create_registered_model",
    "delete_model_version",
    "delete_registered_model",
    "delete_registered_model_alias",
    "finalize_model_version",
    "get_model_version",
    "get_model_version_by_alias",
    "get_registered_model",
    "is_model_version",
    "model_storage_path",
    "search_model_versions",
    "search_registered_models",
    "set_model_version_tag",
    "set_registered_model_alias",
    "set_registered_model_tag",
    "split_model_name",
    "update_model_version",
    "update_registered_model",
]

_PART = r"[A-Za-z0-9_][A-Za-z0-9_\-]*"
_FULL_NAME = re.compile(rf"^({_PART})\.({_PART})\.({_PART})$")
_VERSION = re.compile(r"^[1-9][0-9]{0,9}$")
_ALIAS = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]{0,254}$")

T = TypeVar("T")

# Unity Catalog's ModelVersionStatus values (MLflow's registry store uses the same strings).
PENDING = "PENDING_REGISTRATION"
READY = "READY"


def split_model_name(name: Any) -> tuple[str, str, str]:
    """`catalog.schema.model` as its three parts, or INVALID_PARAMETER_VALUE."""
    m = _FULL_NAME.match(name) if isinstance(name, str) else None
    if m is None:
        raise InvalidParameterValue(
            f"Model name {name!r} is not a three-level Unity Catalog name "
            "(<catalog>.<schema>.<model>)."
        )
    return m.group(1), m.group(2), m.group(3)


def is_model_version(version: Any) -> bool:
    """Whether a value is a model version number (a positive integer, as int or text)."""
    text = str(version) if isinstance(version, int | str) and not isinstance(version, bool) else ""
    return _VERSION.match(text) is not None


def _version(version: Any) -> str:
    text = str(version)
    if not is_model_version(version):
        raise InvalidParameterValue(f"Model version {version!r} is not a positive integer.")
    return text


def model_storage_path(name: str, version: str) -> str:
    """The DBFS/Files API path that holds one model version's files."""
    catalog, schema, model = split_model_name(name)
    return f"/Models/{catalog}/{schema}/{model}/{_version(version)}"


def call_mlflow(fn: Callable[[], T]) -> T:
    """Run `fn`, mapping MLflow's exceptions onto Kiln's error classes."""
    from mlflow.exceptions import MlflowException

    try:
        return fn()
    except MlflowException as e:
        code = e.error_code
        mapped: type[KilnError] = {
            "RESOURCE_DOES_NOT_EXIST": ResourceDoesNotExist,
            "RESOURCE_ALREADY_EXISTS": ResourceAlreadyExists,
            "INVALID_PARAMETER_VALUE": InvalidParameterValue,
        }.get(code, BadRequest)
        raise mapped(e.message, error_code=code if mapped is BadRequest else None) from None


def _entities() -> Any:
    """MLflow's registry entity classes (imported when first used)."""
    import mlflow.entities.model_registry as entities

    return entities


def _tags(tags: Any) -> list[dict[str, str]]:
    if isinstance(tags, dict):
        return [{"key": k, "value": v} for k, v in tags.items()]
    return []


def _aliases(aliases: Any, fallback_version: str | None = None) -> list[dict[str, str]]:
    if isinstance(aliases, dict):
        return [{"alias": a, "version": str(v)} for a, v in aliases.items()]
    if isinstance(aliases, list) and fallback_version is not None:
        return [{"alias": a, "version": fallback_version} for a in aliases]
    return []


def _registered_model(rm: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": rm.name,
        "creation_timestamp": rm.creation_timestamp,
        "last_updated_timestamp": rm.last_updated_timestamp,
        "aliases": _aliases(rm.aliases),
        "tags": _tags(rm.tags),
    }
    if rm.description:
        body["description"] = rm.description
    return body


def _model_version(mv: Any, storage_root: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": mv.name,
        "version": str(mv.version),
        "creation_timestamp": mv.creation_timestamp,
        "last_updated_timestamp": mv.last_updated_timestamp,
        "source": mv.source,
        # MLflow's own creates are READY at once; Kiln's UC creates are pending until finalized.
        "status": mv.status or READY,
        "storage_location": storage_root + model_storage_path(mv.name, str(mv.version)),
        "aliases": _aliases(mv.aliases, str(mv.version)),
        "tags": _tags(mv.tags),
    }
    for key in ("run_id", "description", "user_id"):
        value = getattr(mv, key, None)
        if value:
            body[key] = value
    return body


def create_registered_model(
    store: Any, name: Any, description: str | None, tags: list[dict[str, str]]
) -> dict[str, Any]:
    """Create `catalog.schema.model`."""
    split_model_name(name)
    rm_tags = [_entities().RegisteredModelTag(t["key"], t.get("value", "")) for t in tags]
    rm = call_mlflow(lambda: store.create_registered_model(name, rm_tags, description))
    return {"registered_model": _registered_model(rm)}


def get_registered_model(store: Any, name: Any) -> dict[str, Any]:
    """One registered model."""
    split_model_name(name)
    rm = call_mlflow(lambda: store.get_registered_model(name))
    return {"registered_model": _registered_model(rm)}


def update_registered_model(store: Any, name: Any, description: str | None) -> dict[str, Any]:
    """Change a model's description."""
    split_model_name(name)
    rm = call_mlflow(lambda: store.update_registered_model(name, description))
    return {"registered_model": _registered_model(rm)}


def delete_registered_model(store: Any, name: Any) -> dict[str, Any]:
    """Delete a model and its versions."""
    split_model_name(name)
    call_mlflow(lambda: store.delete_registered_model(name))
    return {}


def search_registered_models(
    store: Any, max_results: int, page_token: str | None
) -> dict[str, Any]:
    """A page of registered models."""
    page = call_mlflow(lambda: store.search_registered_models(None, max_results, None, page_token))
    body: dict[str, Any] = {"registered_models": [_registered_model(rm) for rm in page]}
    if page.token:
        body["next_page_token"] = page.token
    return body


def create_model_version(
    store: Any,
    storage_root: str,
    name: Any,
    source: Any,
    run_id: str | None,
    description: str | None,
    tags: list[dict[str, str]],
) -> dict[str, Any]:
    """A new version of `name` whose files the client uploads next, then finalizes."""
    split_model_name(name)
    if not isinstance(source, str) or not source:
        raise InvalidParameterValue("Missing required parameter 'source'.")
    mv_tags = [_entities().ModelVersionTag(t["key"], t.get("value", "")) for t in tags]
    mv = call_mlflow(
        lambda: store.create_model_version(
            name, source, run_id=run_id or None, tags=mv_tags, description=description
        )
    )
    # As in Unity Catalog: pending until the client has uploaded the files and finalizes.
    mv = call_mlflow(lambda: _set_status(store, name, str(mv.version), PENDING))
    return {"model_version": _model_version(mv, storage_root)}


def _set_status(store: Any, name: str, version: str, status: str) -> Any:
    """Set a version's status in MLflow's store (its API has no call for it); the version."""
    with store.ManagedSessionMaker(read_only=False) as session:
        row = store._get_sql_model_version(session, name=name, version=version)
        row.status = status
        session.add(row)
        return store._populate_model_version_aliases(session, name, row.to_mlflow_entity())


def get_model_version(store: Any, storage_root: str, name: Any, version: Any) -> dict[str, Any]:
    """One model version."""
    split_model_name(name)
    v = _version(version)
    mv = call_mlflow(lambda: store.get_model_version(name, v))
    return {"model_version": _model_version(mv, storage_root)}


def finalize_model_version(
    store: Any, storage_root: str, name: Any, version: Any
) -> dict[str, Any]:
    """Mark a version's upload finished: PENDING_REGISTRATION becomes READY."""
    split_model_name(name)
    v = _version(version)
    mv = call_mlflow(lambda: store.get_model_version(name, v))
    if mv.status != READY:
        mv = call_mlflow(lambda: _set_status(store, name, v, READY))
    return {"model_version": _model_version(mv, storage_root)}


def update_model_version(
    store: Any, storage_root: str, name: Any, version: Any, description: str | None
) -> dict[str, Any]:
    """Change a version's description."""
    split_model_name(name)
    v = _version(version)
    mv = call_mlflow(lambda: store.update_model_version(name, v, description))
    return {"model_version": _model_version(mv, storage_root)}


def delete_model_version(store: Any, name: Any, version: Any) -> dict[str, Any]:
    """Delete one version."""
    split_model_name(name)
    v = _version(version)
    call_mlflow(lambda: store.delete_model_version(name, v))
    return {}


def search_model_versions(
    store: Any,
    storage_root: str,
    filter_string: str | None,
    max_results: int,
    page_token: str | None,
) -> dict[str, Any]:
    """A page of versions matching MLflow's filter syntax (`name='c.s.m'`)."""
    page = call_mlflow(
        lambda: store.search_model_versions(filter_string or None, max_results, None, page_token)
    )
    body: dict[str, Any] = {"model_versions": [_model_version(mv, storage_root) for mv in page]}
    if page.token:
        body["next_page_token"] = page.token
    return body


def _check_alias(alias: Any) -> str:
    if not isinstance(alias, str) or not _ALIAS.match(alias):
        raise InvalidParameterValue(f"Invalid alias {alias!r}.")
    if alias.lower() == "latest" or re.fullmatch(r"[vV][0-9]+", alias):
        raise InvalidParameterValue(f"Alias {alias!r} is reserved.")
    return alias


def set_registered_model_alias(store: Any, name: Any, alias: Any, version: Any) -> dict[str, Any]:
    """Point `alias` at `version`."""
    split_model_name(name)
    a, v = _check_alias(alias), _version(version)
    call_mlflow(lambda: store.set_registered_model_alias(name, a, v))
    return {}


def delete_registered_model_alias(store: Any, name: Any, alias: Any) -> dict[str, Any]:
    """Remove `alias`."""
    split_model_name(name)
    a = _check_alias(alias)
    call_mlflow(lambda: store.delete_registered_model_alias(name, a))
    return {}


def get_model_version_by_alias(
    store: Any, storage_root: str, name: Any, alias: Any
) -> dict[str, Any]:
    """The version `alias` points at."""
    split_model_name(name)
    a = _check_alias(alias)
    try:
        mv = call_mlflow(lambda: store.get_model_version_by_alias(name, a))
    except InvalidParameterValue as e:
        # MLflow's store calls a missing alias a bad parameter; Unity Catalog says not found.
        if "not found" not in e.message:
            raise
        raise ResourceDoesNotExist(e.message) from None
    return {"model_version": _model_version(mv, storage_root)}


def set_registered_model_tag(store: Any, name: Any, key: str, value: str) -> dict[str, Any]:
    """Set a tag on a model."""
    split_model_name(name)
    call_mlflow(
        lambda: store.set_registered_model_tag(name, _entities().RegisteredModelTag(key, value))
    )
    return {}


def set_model_version_tag(
    store: Any, name: Any, version: Any, key: str, value: str
) -> dict[str, Any]:
    """Set a tag on a version."""
    split_model_name(name)
    v = _version(version)
    call_mlflow(
        lambda: store.set_model_version_tag(name, v, _entities().ModelVersionTag(key, value))
    )
    return {}
