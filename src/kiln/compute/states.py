"""Cluster lifecycle enumerations (Databricks' exact wire values) and the allowed transitions.

`transition()` is the only code that assigns a cluster's `state`: every change of state goes
through the table below, so a state Databricks never moves between cannot be reached by a bug.
Persisted values are never renamed.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol

from kiln.errors import InvalidState

__all__ = [
    "ACTIVE_STATES",
    "TRANSITIONS",
    "ClusterSource",
    "DataSecurityMode",
    "EventType",
    "State",
    "StateHolder",
    "TerminationCode",
    "TerminationType",
    "can_transition",
    "transition",
]


class State(StrEnum):
    """A cluster's state (`ClusterDetails.state`)."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    RESTARTING = "RESTARTING"
    RESIZING = "RESIZING"
    TERMINATING = "TERMINATING"
    TERMINATED = "TERMINATED"
    ERROR = "ERROR"
    UNKNOWN = "UNKNOWN"


class TerminationCode(StrEnum):
    """`termination_reason.code`: the subset of Databricks' codes a Kiln cluster can end with."""

    USER_REQUEST = "USER_REQUEST"
    INACTIVITY = "INACTIVITY"
    INIT_SCRIPT_FAILURE = "INIT_SCRIPT_FAILURE"
    DRIVER_UNRESPONSIVE = "DRIVER_UNRESPONSIVE"
    DRIVER_UNREACHABLE = "DRIVER_UNREACHABLE"
    SPARK_STARTUP_FAILURE = "SPARK_STARTUP_FAILURE"
    SPARK_ERROR = "SPARK_ERROR"
    DRIVER_LAUNCH_TIMEOUT = "DRIVER_LAUNCH_TIMEOUT"
    UNEXPECTED_LAUNCH_FAILURE = "UNEXPECTED_LAUNCH_FAILURE"
    COMMUNICATION_LOST = "COMMUNICATION_LOST"
    JOB_FINISHED = "JOB_FINISHED"
    INTERNAL_ERROR = "INTERNAL_ERROR"
    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    INSTANCE_POOL_MAX_CAPACITY_REACHED = "INSTANCE_POOL_MAX_CAPACITY_REACHED"
    INSTANCE_POOL_NOT_FOUND = "INSTANCE_POOL_NOT_FOUND"
    INSTANCE_POOL_CLUSTER_FAILURE = "INSTANCE_POOL_CLUSTER_FAILURE"
    UNKNOWN = "UNKNOWN"


class TerminationType(StrEnum):
    """`termination_reason.type`."""

    SUCCESS = "SUCCESS"
    CLIENT_ERROR = "CLIENT_ERROR"
    SERVICE_FAULT = "SERVICE_FAULT"
    CLOUD_FAILURE = "CLOUD_FAILURE"


class EventType(StrEnum):
    """`ClusterEvent.type`: every value databricks-sdk knows."""

    ADD_NODES_FAILED = "ADD_NODES_FAILED"
    AUTOMATIC_CLUSTER_UPDATE = "AUTOMATIC_CLUSTER_UPDATE"
    AUTOSCALING_BACKOFF = "AUTOSCALING_BACKOFF"
    AUTOSCALING_FAILED = "AUTOSCALING_FAILED"
    AUTOSCALING_STATS_REPORT = "AUTOSCALING_STATS_REPORT"
    CLUSTER_MIGRATED = "CLUSTER_MIGRATED"
    CREATING = "CREATING"
    DBFS_DOWN = "DBFS_DOWN"
    DECOMMISSION_ENDED = "DECOMMISSION_ENDED"
    DECOMMISSION_STARTED = "DECOMMISSION_STARTED"
    DEFERRED_POLICY_ENFORCEMENT_FAILED = "DEFERRED_POLICY_ENFORCEMENT_FAILED"
    DEFERRED_POLICY_ENFORCEMENT_SCHEDULED = "DEFERRED_POLICY_ENFORCEMENT_SCHEDULED"
    DID_NOT_EXPAND_DISK = "DID_NOT_EXPAND_DISK"
    DRIVER_HEALTHY = "DRIVER_HEALTHY"
    DRIVER_NOT_RESPONDING = "DRIVER_NOT_RESPONDING"
    DRIVER_UNAVAILABLE = "DRIVER_UNAVAILABLE"
    EDITED = "EDITED"
    EXPANDED_DISK = "EXPANDED_DISK"
    FAILED_TO_EXPAND_DISK = "FAILED_TO_EXPAND_DISK"
    INIT_SCRIPTS_FINISHED = "INIT_SCRIPTS_FINISHED"
    INIT_SCRIPTS_STARTED = "INIT_SCRIPTS_STARTED"
    METASTORE_DOWN = "METASTORE_DOWN"
    NODES_LOST = "NODES_LOST"
    NODE_BLACKLISTED = "NODE_BLACKLISTED"
    NODE_EXCLUDED_DECOMMISSIONED = "NODE_EXCLUDED_DECOMMISSIONED"
    PINNED = "PINNED"
    RESIZING = "RESIZING"
    RESTARTING = "RESTARTING"
    RUNNING = "RUNNING"
    SPARK_EXCEPTION = "SPARK_EXCEPTION"
    STARTING = "STARTING"
    TERMINATING = "TERMINATING"
    UC_VOLUME_MISCONFIGURED = "UC_VOLUME_MISCONFIGURED"
    UNPINNED = "UNPINNED"
    UPSIZE_COMPLETED = "UPSIZE_COMPLETED"


class ClusterSource(StrEnum):
    """Who created a cluster (`cluster_source`)."""

    API = "API"
    JOB = "JOB"
    MODELS = "MODELS"
    PIPELINE = "PIPELINE"
    PIPELINE_MAINTENANCE = "PIPELINE_MAINTENANCE"
    SQL = "SQL"
    UI = "UI"


class DataSecurityMode(StrEnum):
    """`data_security_mode` (recorded; access modes are enforced by execution contexts)."""

    DATA_SECURITY_MODE_AUTO = "DATA_SECURITY_MODE_AUTO"
    DATA_SECURITY_MODE_DEDICATED = "DATA_SECURITY_MODE_DEDICATED"
    DATA_SECURITY_MODE_STANDARD = "DATA_SECURITY_MODE_STANDARD"
    LEGACY_PASSTHROUGH = "LEGACY_PASSTHROUGH"
    LEGACY_SINGLE_USER = "LEGACY_SINGLE_USER"
    LEGACY_SINGLE_USER_STANDARD = "LEGACY_SINGLE_USER_STANDARD"
    LEGACY_TABLE_ACL = "LEGACY_TABLE_ACL"
    NONE = "NONE"
    SINGLE_USER = "SINGLE_USER"
    USER_ISOLATION = "USER_ISOLATION"


# Databricks' documented transitions (databricks-sdk `State`), plus the ones its API implies:
# start (TERMINATED -> PENDING), a failed launch (PENDING/RESTARTING -> TERMINATING) and ERROR.
TRANSITIONS: dict[State, frozenset[State]] = {
    State.PENDING: frozenset({State.RUNNING, State.TERMINATING, State.ERROR}),
    State.RUNNING: frozenset({State.RESIZING, State.RESTARTING, State.TERMINATING, State.ERROR}),
    State.RESTARTING: frozenset({State.RUNNING, State.TERMINATING, State.ERROR}),
    State.RESIZING: frozenset({State.RUNNING, State.TERMINATING, State.ERROR}),
    State.TERMINATING: frozenset({State.TERMINATED}),
    State.TERMINATED: frozenset({State.PENDING}),
    State.ERROR: frozenset({State.TERMINATING}),
    State.UNKNOWN: frozenset(set(State) - {State.UNKNOWN}),
}

# States in which a cluster holds (or is acquiring) processes.
ACTIVE_STATES: frozenset[State] = frozenset(
    {State.PENDING, State.RUNNING, State.RESTARTING, State.RESIZING, State.TERMINATING}
)


class StateHolder(Protocol):
    """Anything with a lifecycle state and message: the cluster row."""

    state: str
    state_message: str


def can_transition(current: State | str, target: State) -> bool:
    """Whether Databricks allows moving from `current` to `target`."""
    return target in TRANSITIONS[State(current)]


def transition(holder: StateHolder, target: State, message: str = "") -> State:
    """Move `holder` to `target` (the one place `.state` is assigned); INVALID_STATE if refused."""
    current = State(holder.state)
    if target not in TRANSITIONS[current]:
        raise InvalidState(f"Cannot move a cluster from {current.value} to {target.value}.")
    holder.state = target.value
    holder.state_message = message
    return current
