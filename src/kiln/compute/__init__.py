"""Clusters on real Apache Spark: specs, lifecycle, the supervisor and the compute backends.

Invariants: a cluster's `state` changes only through `states.transition`, along Databricks'
transitions; every bad spec is refused before anything starts; the API only records intent
and the supervisor does the work; every process a cluster owns is recorded (PID and start
time) before anything waits on it, binds to loopback, and is gone once the cluster is
TERMINATED, permanently deleted, or the server stops cleanly; after a crash of the control
plane, live clusters are adopted and dead ones reconciled to TERMINATED with the reason.
"""

from kiln.compute import clusters, spark_versions
from kiln.compute.backends.base import (
    BACKENDS,
    ClusterBackend,
    InstanceSpec,
    LaunchSpec,
    PythonEnvironment,
    RuntimeHandle,
)
from kiln.compute.environment import DefaultEnvironment, EnvironmentProvider
from kiln.compute.events import EventPage, EventQuery
from kiln.compute.node_types import NodeType, NodeTypeCatalogue
from kiln.compute.service import Compute
from kiln.compute.spec import ClusterSpec, parse_spec
from kiln.compute.states import EventType, State, TerminationCode, TerminationType
from kiln.compute.views import ClusterView

__all__ = [
    "BACKENDS",
    "ClusterBackend",
    "ClusterSpec",
    "ClusterView",
    "Compute",
    "DefaultEnvironment",
    "EnvironmentProvider",
    "EventPage",
    "EventQuery",
    "EventType",
    "InstanceSpec",
    "LaunchSpec",
    "NodeType",
    "NodeTypeCatalogue",
    "PythonEnvironment",
    "RuntimeHandle",
    "State",
    "TerminationCode",
    "TerminationType",
    "clusters",
    "parse_spec",
    "spark_versions",
]
