"""Serving endpoint configs: validation of the wire shape into a normalized config, and back.

A config is stored in Databricks' wire shape (`served_entities`, `traffic_config`,
`auto_capture_config`, `config_version`), normalized: every served entity has a name, and the
routes always cover every entity with percentages that add up to 100.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from kiln.errors import InvalidParameterValue
from kiln.ml.uc_registry import is_model_version, split_model_name

__all__ = [
    "EndpointState",
    "ServedEntity",
    "check_endpoint_name",
    "entities_of",
    "normalize_config",
    "routes_of",
]

_ENDPOINT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")
_ENTITY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
WORKLOAD_SIZES = ("Small", "Medium", "Large")
FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")


class EndpointState:
    """Databricks' endpoint state values (EndpointStateReady, EndpointStateConfigUpdate)."""

    READY = "READY"
    NOT_READY = "NOT_READY"
    IN_PROGRESS = "IN_PROGRESS"
    NOT_UPDATING = "NOT_UPDATING"
    UPDATE_FAILED = "UPDATE_FAILED"


@dataclass(frozen=True)
class ServedEntity:
    """One served model version."""

    name: str
    entity_name: str
    entity_version: str
    scale_to_zero_enabled: bool


def check_endpoint_name(name: Any) -> str:
    """A valid endpoint name, or INVALID_PARAMETER_VALUE."""
    if not isinstance(name, str) or not _ENDPOINT_NAME.match(name):
        raise InvalidParameterValue(
            f"Invalid endpoint name {name!r}: use 1-63 letters, digits, '-' and '_'."
        )
    return name


def _entity(raw: Any, legacy: bool) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise InvalidParameterValue("Each served entity must be an object.")
    name_key, version_key = (
        ("model_name", "model_version")
        if legacy
        else (
            "entity_name",
            "entity_version",
        )
    )
    entity_name = raw.get(name_key)
    if entity_name is None:
        raise InvalidParameterValue(f"Missing required field '{name_key}' of a served entity.")
    _, _, model = split_model_name(entity_name)
    version = str(raw.get(version_key, ""))
    if not is_model_version(version):
        raise InvalidParameterValue(
            f"Field '{version_key}' of served entity {entity_name!r} must be a positive "
            f"integer, got {raw.get(version_key)!r}."
        )
    name = raw.get("name") or f"{model}-{version}"
    if not isinstance(name, str) or not _ENTITY_NAME.match(name):
        raise InvalidParameterValue(f"Invalid served entity name {name!r}.")
    size = raw.get("workload_size", "Small")
    if size not in WORKLOAD_SIZES:
        raise InvalidParameterValue(
            f"Invalid workload_size {size!r}; expected one of {', '.join(WORKLOAD_SIZES)}."
        )
    scale = raw.get("scale_to_zero_enabled", False)
    if not isinstance(scale, bool):
        raise InvalidParameterValue("scale_to_zero_enabled must be a boolean.")
    return {
        "name": name,
        "entity_name": entity_name,
        "entity_version": version,
        "workload_size": size,
        "scale_to_zero_enabled": scale,
    }


def _routes(raw: Any, names: list[str]) -> list[dict[str, Any]]:
    if raw is None:
        share, rest = divmod(100, len(names))
        return [
            {"served_model_name": n, "served_entity_name": n, "traffic_percentage": share}
            | ({"traffic_percentage": share + rest} if i == 0 else {})
            for i, n in enumerate(names)
        ]
    routes = raw.get("routes") if isinstance(raw, dict) else None
    if not isinstance(routes, list) or not routes:
        raise InvalidParameterValue("traffic_config.routes must be a non-empty list.")
    out: list[dict[str, Any]] = []
    for route in routes:
        if not isinstance(route, dict):
            raise InvalidParameterValue("Each traffic route must be an object.")
        target = route.get("served_entity_name") or route.get("served_model_name")
        if target not in names:
            raise InvalidParameterValue(
                f"Traffic route names {target!r}, which is not a served entity of this config."
            )
        pct = route.get("traffic_percentage")
        if not isinstance(pct, int) or isinstance(pct, bool) or not 0 <= pct <= 100:
            raise InvalidParameterValue(
                f"traffic_percentage of route {target!r} must be an integer from 0 to 100."
            )
        out.append(
            {"served_model_name": target, "served_entity_name": target, "traffic_percentage": pct}
        )
    if sum(r["traffic_percentage"] for r in out) != 100:
        raise InvalidParameterValue("The traffic percentages of the routes must add up to 100.")
    if len({r["served_entity_name"] for r in out}) != len(out):
        raise InvalidParameterValue("Each served entity may have only one traffic route.")
    return out


def _auto_capture(raw: Any) -> dict[str, Any] | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise InvalidParameterValue("auto_capture_config must be an object.")
    enabled = raw.get("enabled", True)
    if not isinstance(enabled, bool):
        raise InvalidParameterValue("auto_capture_config.enabled must be a boolean.")
    out: dict[str, Any] = {"enabled": enabled}
    for key in ("catalog_name", "schema_name", "table_name_prefix"):
        value = raw.get(key)
        if value is None:
            raise InvalidParameterValue(f"Missing required field 'auto_capture_config.{key}'.")
        if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9_]{1,100}", value):
            raise InvalidParameterValue(f"Invalid auto_capture_config.{key} {value!r}.")
        out[key] = value.lower()
    return out


def normalize_config(raw: Any, version: int) -> dict[str, Any]:
    """The config as stored: validated, with entity names and full routes filled in."""
    if not isinstance(raw, dict):
        raise InvalidParameterValue("Missing required field 'config'.")
    legacy = "served_entities" not in raw and "served_models" in raw
    items = raw.get("served_models" if legacy else "served_entities")
    if not isinstance(items, list) or not items:
        raise InvalidParameterValue("config.served_entities must be a non-empty list.")
    entities = [_entity(item, legacy) for item in items]
    names = [e["name"] for e in entities]
    if len(set(names)) != len(names):
        raise InvalidParameterValue("Served entity names must be unique within a config.")
    config: dict[str, Any] = {
        "served_entities": entities,
        "traffic_config": {"routes": _routes(raw.get("traffic_config"), names)},
        "config_version": version,
    }
    capture = _auto_capture(raw.get("auto_capture_config"))
    if capture is not None:
        config["auto_capture_config"] = capture
    return config


def entities_of(config: dict[str, Any]) -> list[ServedEntity]:
    """The served entities of a stored config."""
    return [
        ServedEntity(
            e["name"], e["entity_name"], e["entity_version"], bool(e["scale_to_zero_enabled"])
        )
        for e in config["served_entities"]
    ]


def routes_of(config: dict[str, Any]) -> list[tuple[str, int]]:
    """(served entity name, traffic percentage) of a stored config."""
    return [
        (r["served_entity_name"], int(r["traffic_percentage"]))
        for r in config["traffic_config"]["routes"]
    ]
