"""Who may run code on a cluster, how its contexts reach Spark, and whether it can run now.

Databricks' access modes decide both: on a *dedicated* (single-user) cluster only its user
attaches, and contexts get the classic API (py4j: `sc`, RDDs, barrier mode); on a *standard*
(shared) cluster any user attaches and each context is an isolated Spark Connect session;
*no isolation shared* (no `data_security_mode`, or `NONE`) is the classic API for everyone.
"""

from __future__ import annotations

from typing import Any

from kiln.compute.states import DataSecurityMode, State
from kiln.errors import InvalidState, PermissionDenied
from kiln.identity import Principal

__all__ = [
    "CLASSIC",
    "CONNECT",
    "RUNNABLE_STATES",
    "access_mode",
    "access_mode_for",
    "require_attach",
    "require_runnable",
]

CLASSIC = "classic"
CONNECT = "connect"
# Commands run while a cluster resizes, as on Databricks.
RUNNABLE_STATES = frozenset({State.RUNNING.value, State.RESIZING.value})
_STARTING = frozenset({State.PENDING.value, State.RESTARTING.value})
_STANDARD = frozenset(
    {
        DataSecurityMode.USER_ISOLATION.value,
        DataSecurityMode.DATA_SECURITY_MODE_STANDARD.value,
        DataSecurityMode.LEGACY_TABLE_ACL.value,
        DataSecurityMode.LEGACY_SINGLE_USER_STANDARD.value,
    }
)
_DEDICATED = frozenset(
    {
        DataSecurityMode.SINGLE_USER.value,
        DataSecurityMode.DATA_SECURITY_MODE_DEDICATED.value,
        DataSecurityMode.LEGACY_SINGLE_USER.value,
        DataSecurityMode.LEGACY_PASSTHROUGH.value,
    }
)


def _single_user(spec: dict[str, Any]) -> str | None:
    value = spec.get("single_user_name")
    return value if isinstance(value, str) and value else None


def _dedicated(spec: dict[str, Any]) -> bool:
    mode = spec.get("data_security_mode")
    if mode == DataSecurityMode.DATA_SECURITY_MODE_AUTO.value:
        return _single_user(spec) is not None
    return mode in _DEDICATED


def access_mode(spec: dict[str, Any]) -> str:
    """`connect` on standard clusters, `classic` on dedicated and no-isolation ones."""
    return access_mode_for(spec.get("data_security_mode"), _single_user(spec))


def access_mode_for(data_security_mode: str | None, single_user_name: str | None) -> str:
    """`access_mode` from the two fields it depends on (for a parsed `ClusterSpec`)."""
    if data_security_mode in _STANDARD:
        return CONNECT
    auto = DataSecurityMode.DATA_SECURITY_MODE_AUTO.value
    if data_security_mode == auto and not single_user_name:
        return CONNECT
    return CLASSIC


def require_attach(principal: Principal, cluster_id: str, spec: dict[str, Any]) -> None:
    """Raise 403 unless the principal may run code on the cluster (a dedicated cluster is its
    single user's alone, admins included, as on Databricks)."""
    user = _single_user(spec)
    if _dedicated(spec) and user is not None and user.lower() != principal.user_name.lower():
        raise PermissionDenied(
            f"Cluster {cluster_id} is a dedicated cluster of {user}: "
            f"user {principal.user_name} cannot run commands on it."
        )


def require_runnable(cluster_id: str, state: str) -> None:
    """Raise unless the cluster runs. A starting cluster gets Databricks' transient error
    (`ClusterNotReadyException`, which databricks-sdk retries until the cluster runs)."""
    if state in RUNNABLE_STATES:
        return
    if state in _STARTING:
        raise InvalidState(
            f"ClusterNotReadyException: Cluster {cluster_id} is {state}; "
            "commands can run once it is RUNNING."
        )
    raise InvalidState(
        f"Cluster {cluster_id} is not running (its state is {state}): start it to run commands."
    )
