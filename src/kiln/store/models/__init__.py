"""ORM models of every Kiln table (SQLAlchemy 2 typed mappings)."""

from kiln.store.models.base import Base, UTCDateTime, now_utc, to_epoch_ms
from kiln.store.models.catalog import CatalogRow, SchemaRow, TableRow, VolumeRow
from kiln.store.models.compute import Cluster, ClusterEvent, ClusterPermission, ClusterRuntime
from kiln.store.models.dbfs import DbfsHandle, FileUpload
from kiln.store.models.features import FeatureLineage, FeatureTableRecord
from kiln.store.models.identity import Group, GroupMember, Token, User
from kiln.store.models.jobs import Job, JobRun, JobTaskOutput, JobTaskRun
from kiln.store.models.libraries import ClusterLibrary
from kiln.store.models.ml import ScorerProcess, ServingEndpoint
from kiln.store.models.pools import InstancePool, PoolInstance, PoolWaiter
from kiln.store.models.registry import RegistryActivity, RegistryWebhook
from kiln.store.models.secrets import Secret, SecretAcl, SecretScope
from kiln.store.models.web import NotebookRevision
from kiln.store.models.workspace import WorkspaceObject

__all__ = [
    "Base",
    "CatalogRow",
    "Cluster",
    "ClusterEvent",
    "ClusterLibrary",
    "ClusterPermission",
    "ClusterRuntime",
    "DbfsHandle",
    "FeatureLineage",
    "FeatureTableRecord",
    "FileUpload",
    "Group",
    "GroupMember",
    "InstancePool",
    "Job",
    "JobRun",
    "JobTaskOutput",
    "JobTaskRun",
    "NotebookRevision",
    "PoolInstance",
    "PoolWaiter",
    "RegistryActivity",
    "RegistryWebhook",
    "SchemaRow",
    "ScorerProcess",
    "Secret",
    "SecretAcl",
    "SecretScope",
    "ServingEndpoint",
    "TableRow",
    "Token",
    "UTCDateTime",
    "User",
    "VolumeRow",
    "WorkspaceObject",
    "now_utc",
    "to_epoch_ms",
]
