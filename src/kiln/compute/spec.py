"""Validation of a cluster's create/edit request into a `ClusterSpec`.

Everything a client may get wrong is refused here, before anything starts, with
INVALID_PARAMETER_VALUE naming the field: unknown node types, negative or oversized worker
counts, both `num_workers` and `autoscale`, autotermination outside 10-10000 minutes, malformed
`spark_conf`/`spark_env_vars`/`custom_tags`, and log or init-script locations outside Kiln's
own stores. The spec is stored as the normalized request (`ClusterSpec.record`), so `get`
returns what the client sent, in Databricks' field names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from kiln.compute import spark_versions
from kiln.compute.node_types import NodeType, NodeTypeCatalogue
from kiln.compute.states import DataSecurityMode
from kiln.dbfs.paths import dbfs_path, files_path
from kiln.errors import InvalidParameterValue
from kiln.paths import normalize_absolute_path

__all__ = [
    "MANAGED_ENV_VARS",
    "MANAGED_SPARK_CONF",
    "PROFILE_KEY",
    "SINGLE_NODE_PROFILE",
    "AutoScale",
    "ClusterSpec",
    "InitScript",
    "LogDestination",
    "parse_spec",
]

# Settings Kiln owns on every cluster: loopback bindings, authentication and the UI's proxy.
MANAGED_SPARK_CONF = frozenset(
    {
        "spark.authenticate",
        "spark.authenticate.secret",
        "spark.authenticate.secret.file",
        "spark.authenticate.secret.driver.file",
        "spark.authenticate.secret.executor.file",
        "spark.driver.host",
        "spark.driver.bindAddress",
        "spark.blockManager.bindAddress",
        "spark.master.rest.enabled",
        "spark.ui.proxyBase",
        "spark.ui.reverseProxy",
        "spark.ui.reverseProxyUrl",
        "spark.submit.deployMode",
    }
)
MANAGED_ENV_VARS = frozenset(
    {"SPARK_LOCAL_IP", "SPARK_LOCAL_HOSTNAME", "SPARK_PUBLIC_DNS", "SPARK_MASTER_HOST"}
)
DEFAULT_TAG_KEYS = frozenset({"Vendor", "Creator", "ClusterName", "ClusterId", "Name"})
SINGLE_NODE_PROFILE = "singleNode"
PROFILE_KEY = "spark.databricks.cluster.profile"

MAX_NAME = 100
MAX_TAGS = 45
MAX_INIT_SCRIPTS = 10
_CONF_KEY = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,511}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,255}$")
_LOCAL_MASTER = re.compile(r"^local(\[(\*|[1-9]\d{0,3})\])?$")
_UNSUPPORTED_SCRIPT_KINDS = ("file", "s3", "abfss", "gcs")
_RUNTIME_ENGINES = ("STANDARD", "PHOTON", "NULL")
_KINDS = ("CLASSIC_PREVIEW",)
# Databricks attributes Kiln records and returns unchanged but has no use for.
_RECORDED = (
    "aws_attributes",
    "azure_attributes",
    "gcp_attributes",
    "enable_elastic_disk",
    "enable_local_disk_encryption",
    "docker_image",
    "workload_type",
    "use_ml_runtime",
    "total_initial_remote_disk_size",
    "remote_disk_throughput",
    "dependency_mode",
    "policy_id",
)


@dataclass(frozen=True, slots=True)
class AutoScale:
    """`autoscale`: the bounds the worker count moves between."""

    min_workers: int
    max_workers: int


@dataclass(frozen=True, slots=True)
class LogDestination:
    """`cluster_log_conf`: where logs go (`dbfs` or `volumes`), as a clean store path."""

    kind: str
    path: str


@dataclass(frozen=True, slots=True)
class InitScript:
    """One `init_scripts` entry: where its content lives in Kiln's stores."""

    kind: str  # workspace, dbfs or volumes
    path: str

    @property
    def name(self) -> str:
        """The script's file name."""
        return self.path.rsplit("/", 1)[-1] or "init.sh"

    def wire(self) -> dict[str, dict[str, str]]:
        """Databricks' `InitScriptInfo` form."""
        destination = f"dbfs:{self.path}" if self.kind == "dbfs" else self.path
        return {self.kind: {"destination": destination}}


@dataclass(frozen=True, slots=True)
class ClusterSpec:
    """A validated cluster specification."""

    cluster_name: str
    spark_version: str
    node_type: NodeType
    driver_node_type: NodeType
    num_workers: int
    autoscale: AutoScale | None
    autotermination_minutes: int
    spark_conf: dict[str, str]
    spark_env_vars: dict[str, str]
    custom_tags: dict[str, str]
    cluster_log_conf: LogDestination | None
    init_scripts: tuple[InitScript, ...]
    single_node: bool
    data_security_mode: str | None
    single_user_name: str | None
    instance_pool_id: str | None
    driver_instance_pool_id: str | None
    record: dict[str, Any] = field(default_factory=dict)

    @property
    def initial_workers(self) -> int:
        """Workers started with the cluster."""
        return self.autoscale.min_workers if self.autoscale else self.num_workers

    @property
    def standalone(self) -> bool:
        """Whether the cluster runs a Spark standalone master and workers (not local mode)."""
        return not self.single_node


def _require_dict(value: object, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidParameterValue(f"{what} must be an object.")
    return value


def _scalar_text(value: object, what: str) -> str:
    # Lenient about framing: JSON numbers and booleans are written as Spark reads them.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        text = str(value)
        if "\x00" in text:
            raise InvalidParameterValue(f"{what} must not contain NUL bytes.")
        return text
    raise InvalidParameterValue(f"{what} must be a string, not {type(value).__name__}.")


def _int(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise InvalidParameterValue(f"{what} must be an integer.")
    try:
        return int(value)
    except ValueError as exc:
        raise InvalidParameterValue(f"{what} must be an integer, not {value!r}.") from exc


def _optional_text(raw: dict[str, Any], key: str, limit: int = 1024) -> str | None:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise InvalidParameterValue(f"{key} must be a string of at most {limit} characters.")
    return value


def _spark_conf(raw: object) -> dict[str, str]:
    conf: dict[str, str] = {}
    for key, value in _require_dict(raw, "spark_conf").items():
        if not _CONF_KEY.match(key):
            raise InvalidParameterValue(
                f"spark_conf: {key!r} is not a valid Spark configuration key."
            )
        if key in MANAGED_SPARK_CONF:
            raise InvalidParameterValue(
                f"spark_conf: {key} is managed by Kiln (loopback bindings, authentication and "
                "the UI proxy) and cannot be set."
            )
        conf[key] = _scalar_text(value, f"spark_conf.{key}")
    return conf


def _env_vars(raw: object) -> dict[str, str]:
    env: dict[str, str] = {}
    for key, value in _require_dict(raw, "spark_env_vars").items():
        if not _ENV_NAME.match(key):
            raise InvalidParameterValue(f"spark_env_vars: {key!r} is not a valid variable name.")
        if key in MANAGED_ENV_VARS or key.startswith("KILN_"):
            raise InvalidParameterValue(f"spark_env_vars: {key} is managed by Kiln.")
        env[key] = _scalar_text(value, f"spark_env_vars.{key}")
    return env


def _tags(raw: object) -> dict[str, str]:
    tags = _require_dict(raw, "custom_tags")
    if len(tags) > MAX_TAGS:
        raise InvalidParameterValue(f"custom_tags: at most {MAX_TAGS} tags are allowed.")
    out: dict[str, str] = {}
    for key, value in tags.items():
        if not key or len(key) > 127:
            raise InvalidParameterValue("custom_tags: tag keys must have 1-127 characters.")
        if key in DEFAULT_TAG_KEYS:
            raise InvalidParameterValue(f"custom_tags: {key} is a default tag and is reserved.")
        text = _scalar_text(value, f"custom_tags.{key}")
        if len(text) > 255:
            raise InvalidParameterValue(f"custom_tags.{key}: values have at most 255 characters.")
        out[key] = text
    return out


def _store_location(kind: str, raw: object, what: str) -> str:
    if not isinstance(raw, dict) or not isinstance(raw.get("destination"), str):
        raise InvalidParameterValue(f"{what}.destination is required.")
    try:
        return _clean_location(kind, raw["destination"], what)
    except InvalidParameterValue as exc:
        if exc.message.startswith(what):
            raise
        raise InvalidParameterValue(f"{what}.destination: {exc.message}") from exc


def _clean_location(kind: str, destination: str, what: str) -> str:
    if kind == "dbfs":
        return dbfs_path(destination, what=f"{what}.destination")
    if kind == "volumes":
        path = files_path(destination, what=f"{what}.destination")
        if not path.startswith("/Volumes/"):
            raise InvalidParameterValue(f"{what}.destination must be under /Volumes/.")
        return path
    # workspace: Databricks accepts the path with or without the /Workspace prefix.
    path = normalize_absolute_path(destination, what=f"{what}.destination")
    if path == "/Workspace" or path.startswith("/Workspace/"):
        path = path[len("/Workspace") :] or "/"
    if path == "/":
        raise InvalidParameterValue(f"{what}.destination must name a file.")
    return path


def _log_conf(raw: object) -> LogDestination:
    conf = _require_dict(raw, "cluster_log_conf")
    kinds = [k for k, v in conf.items() if v is not None]
    if len(kinds) != 1:
        raise InvalidParameterValue("cluster_log_conf must name exactly one destination.")
    kind = kinds[0]
    if kind not in ("dbfs", "volumes"):
        raise InvalidParameterValue(
            f"cluster_log_conf.{kind}: only dbfs and volumes destinations are supported by Kiln."
        )
    path = _store_location(kind, conf[kind], f"cluster_log_conf.{kind}")
    if path == "/":
        raise InvalidParameterValue(f"cluster_log_conf.{kind}.destination must not be the root.")
    return LogDestination(kind, path)


def _init_scripts(raw: object) -> tuple[InitScript, ...]:
    if not isinstance(raw, list):
        raise InvalidParameterValue("init_scripts must be a list.")
    if len(raw) > MAX_INIT_SCRIPTS:
        raise InvalidParameterValue(f"init_scripts: at most {MAX_INIT_SCRIPTS} are allowed.")
    scripts: list[InitScript] = []
    for i, item in enumerate(raw):
        what = f"init_scripts[{i}]"
        entry = _require_dict(item, what)
        kinds = [k for k, v in entry.items() if v is not None]
        if len(kinds) != 1:
            raise InvalidParameterValue(f"{what} must name exactly one location.")
        kind = kinds[0]
        if kind in _UNSUPPORTED_SCRIPT_KINDS:
            raise InvalidParameterValue(
                f"{what}.{kind}: init scripts must live in Kiln's own stores "
                "(workspace, dbfs or volumes)."
            )
        if kind not in ("workspace", "dbfs", "volumes"):
            raise InvalidParameterValue(f"{what}: unknown init script location {kind!r}.")
        scripts.append(InitScript(kind, _store_location(kind, entry[kind], f"{what}.{kind}")))
    return tuple(scripts)


def _workers(raw: dict[str, Any], max_workers: int) -> tuple[int, AutoScale | None]:
    has_autoscale = raw.get("autoscale") is not None
    if has_autoscale and raw.get("num_workers") is not None:
        raise InvalidParameterValue("num_workers: set either num_workers or autoscale, not both.")
    if has_autoscale:
        scale = _require_dict(raw["autoscale"], "autoscale")
        low = _int(scale.get("min_workers"), "autoscale.min_workers")
        high = _int(scale.get("max_workers"), "autoscale.max_workers")
        if low < 0:
            raise InvalidParameterValue("autoscale.min_workers must not be negative.")
        if high < 1 or high < low:
            raise InvalidParameterValue(
                "autoscale.max_workers must be at least 1 and at least autoscale.min_workers."
            )
        if high > max_workers:
            raise InvalidParameterValue(
                f"autoscale.max_workers: {high} exceeds the limit of {max_workers} workers."
            )
        return low, AutoScale(low, high)
    num = _int(raw.get("num_workers", 0) or 0, "num_workers")
    if num < 0:
        raise InvalidParameterValue("num_workers must not be negative.")
    if num > max_workers:
        raise InvalidParameterValue(
            f"num_workers: {num} exceeds the limit of {max_workers} workers."
        )
    return num, None


def _autotermination(raw: dict[str, Any]) -> int:
    value = raw.get("autotermination_minutes")
    if value is None:
        return 0
    minutes = _int(value, "autotermination_minutes")
    if minutes != 0 and not 10 <= minutes <= 10000:
        raise InvalidParameterValue(
            "autotermination_minutes must be 0 (off) or between 10 and 10000 minutes."
        )
    return minutes


def _single_node(
    raw: dict[str, Any], conf: dict[str, str], num_workers: int, autoscale: AutoScale | None
) -> bool:
    profile = conf.get(PROFILE_KEY)
    flagged = bool(raw.get("is_single_node")) or profile == SINGLE_NODE_PROFILE
    if flagged and (num_workers or autoscale):
        raise InvalidParameterValue(
            "num_workers: a single-node cluster (singleNode profile or is_single_node) "
            "must have num_workers 0 and no autoscale."
        )
    master = conf.get("spark.master")
    if master is not None:
        if not _LOCAL_MASTER.match(master):
            raise InvalidParameterValue(
                f"spark_conf: spark.master {master!r} is managed by Kiln; only local[*] or "
                "local[N] may be given, for single-node clusters."
            )
        if num_workers or autoscale:
            raise InvalidParameterValue(
                "spark_conf: spark.master local[...] is only valid with num_workers 0."
            )
    return autoscale is None and num_workers == 0


def _enum_text(raw: dict[str, Any], key: str, allowed: tuple[str, ...]) -> str | None:
    value = raw.get(key)
    if value is None:
        return None
    if value not in allowed:
        raise InvalidParameterValue(f"{key}: {value!r} is not one of {', '.join(allowed)}.")
    return str(value)


def parse_spec(raw: dict[str, Any], catalogue: NodeTypeCatalogue, max_workers: int) -> ClusterSpec:
    """Validate a create/edit body (Databricks field names) into a ClusterSpec, or raise a 400."""
    name = raw.get("cluster_name") or ""
    if not isinstance(name, str) or len(name) > MAX_NAME:
        raise InvalidParameterValue(
            f"cluster_name must be a string of at most {MAX_NAME} characters."
        )
    version = spark_versions.validate(raw.get("spark_version"))
    node_id = raw.get("node_type_id")
    if node_id is not None and not isinstance(node_id, str):
        raise InvalidParameterValue("node_type_id must be a string.")
    node = catalogue.get(node_id) if node_id else catalogue.default
    driver_id = raw.get("driver_node_type_id")
    if driver_id is not None and not isinstance(driver_id, str):
        raise InvalidParameterValue("driver_node_type_id must be a string.")
    driver = catalogue.get(driver_id, field="driver_node_type_id") if driver_id else node
    num_workers, autoscale = _workers(raw, max_workers)
    conf = _spark_conf(raw.get("spark_conf") or {})
    env = _env_vars(raw.get("spark_env_vars") or {})
    tags = _tags(raw.get("custom_tags") or {})
    log_conf = _log_conf(raw["cluster_log_conf"]) if raw.get("cluster_log_conf") else None
    scripts = _init_scripts(raw.get("init_scripts") or [])
    single = _single_node(raw, conf, num_workers, autoscale)
    minutes = _autotermination(raw)
    mode = _enum_text(raw, "data_security_mode", tuple(m.value for m in DataSecurityMode))
    single_user = _optional_text(raw, "single_user_name", 255)
    _enum_text(raw, "kind", _KINDS)
    _enum_text(raw, "runtime_engine", _RUNTIME_ENGINES)
    pool = _optional_text(raw, "instance_pool_id", 255)
    driver_pool = _optional_text(raw, "driver_instance_pool_id", 255)
    keys = raw.get("ssh_public_keys")
    if keys is not None and (
        not isinstance(keys, list) or len(keys) > 10 or not all(isinstance(k, str) for k in keys)
    ):
        raise InvalidParameterValue("ssh_public_keys must be a list of at most 10 strings.")

    record: dict[str, Any] = {
        "cluster_name": name,
        "spark_version": version,
        "node_type_id": node.node_type_id,
        "driver_node_type_id": driver.node_type_id,
        "autotermination_minutes": minutes,
        "spark_conf": conf,
        "spark_env_vars": env,
        "custom_tags": tags,
        "init_scripts": [s.wire() for s in scripts],
    }
    if autoscale is not None:
        record["autoscale"] = {
            "min_workers": autoscale.min_workers,
            "max_workers": autoscale.max_workers,
        }
    else:
        record["num_workers"] = num_workers
    if log_conf is not None:
        destination = f"dbfs:{log_conf.path}" if log_conf.kind == "dbfs" else log_conf.path
        record["cluster_log_conf"] = {log_conf.kind: {"destination": destination}}
    for key in (
        "data_security_mode",
        "single_user_name",
        "kind",
        "runtime_engine",
        "instance_pool_id",
        "driver_instance_pool_id",
        "ssh_public_keys",
    ):
        if raw.get(key) is not None:
            record[key] = raw[key]
    if raw.get("is_single_node") is not None:
        record["is_single_node"] = bool(raw["is_single_node"])
    for key in _RECORDED:
        if raw.get(key) is not None:
            record[key] = raw[key]
    return ClusterSpec(
        cluster_name=name,
        spark_version=version,
        node_type=node,
        driver_node_type=driver,
        num_workers=num_workers,
        autoscale=autoscale,
        autotermination_minutes=minutes,
        spark_conf=conf,
        spark_env_vars=env,
        custom_tags=tags,
        cluster_log_conf=log_conf,
        init_scripts=scripts,
        single_node=single,
        data_security_mode=mode,
        single_user_name=single_user,
        instance_pool_id=pool,
        driver_instance_pool_id=driver_pool,
        record=record,
    )
