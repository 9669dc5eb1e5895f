"""One typed settings tree, built once at start and passed in (no module-level config)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["ComputeSettings", "KilnSettings", "LimitSettings", "NodeTypeSetting"]


class LimitSettings(BaseSettings):
    """Request limits, in bytes unless named otherwise (Databricks' values by default)."""

    model_config = SettingsConfigDict(env_prefix="KILN_LIMIT_", extra="ignore")

    # A JSON body: a 10 MB workspace import is ~13.4 MB once base64-encoded.
    json_body: int = 16 * 1024 * 1024
    # A streamed upload (Files API PUT, DBFS multipart put).
    upload_body: int = 5 * 1024 * 1024 * 1024
    workspace_import: int = 10 * 1024 * 1024
    dbfs_block: int = 1024 * 1024
    dbfs_read: int = 1024 * 1024
    secret_value: int = 128 * 1024


class NodeTypeSetting(BaseModel):
    """One entry of the node-type catalogue: a size a cluster node (driver or worker) gets."""

    node_type_id: str
    num_cores: int = Field(ge=1)
    memory_mb: int = Field(ge=256)
    description: str | None = None


class ComputeSettings(BaseSettings):
    """Clusters: the backend, the node-type catalogue and the background services' pace."""

    model_config = SettingsConfigDict(env_prefix="KILN_COMPUTE_", extra="ignore")

    # Which compute backend starts cluster processes (a key of the backend registry).
    backend: str = "local"
    # The node-type catalogue; empty means a few sizes derived from this machine.
    node_types: list[NodeTypeSetting] = Field(default_factory=list)
    # The largest num_workers (or autoscale.max_workers) a cluster may ask for.
    max_workers: int = 16
    # The address every Spark port binds to. Loopback unless deliberately configured.
    bind_host: str = "127.0.0.1"
    # Seconds in one autotermination "minute": tests shrink it to a second so idle clusters
    # stop quickly while the API still validates Databricks' 10-10000 minute range.
    autotermination_minute_seconds: float = 60.0
    # The same for instance pools' idle_instance_autotermination_minutes.
    pool_idle_minute_seconds: float = 60.0
    # How often the supervisor reconciles clusters (health, autoscale) and the autotermination
    # service looks for idle clusters.
    supervisor_interval_seconds: float = 2.0
    autotermination_interval_seconds: float = 5.0
    # How often logs are delivered to a cluster's cluster_log_conf destination (Databricks: 5 min).
    log_delivery_interval_seconds: float = 300.0
    # Autoscaling: a backlog held this long adds workers; no work this long removes one.
    autoscale_up_seconds: float = 5.0
    autoscale_down_seconds: float = 60.0
    # Limits on how long one start step may take before the cluster is failed.
    start_timeout_seconds: float = 300.0
    init_script_timeout_seconds: float = 600.0
    # How long a terminate waits after SIGTERM before SIGKILL.
    stop_grace_seconds: float = 5.0
    # Memory of each standalone master/worker daemon JVM.
    daemon_memory: str = "256m"


class KilnSettings(BaseSettings):
    """Everything the server reads at start."""

    model_config = SettingsConfigDict(env_prefix="KILN_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = Path(".kiln")
    # PostgreSQL (or any SQLAlchemy URL) when set; SQLite in the data dir otherwise.
    database_url: str | None = None
    # fsspec URL of the DBFS root; a local folder under the data dir by default.
    dbfs_root: str | None = None
    workspace_id: str = "1"
    admin_user: str = "admin@kiln.local"
    # Seed a demo folder in the admin's home at start (`make up`).
    demo: bool = False
    limits: LimitSettings = Field(default_factory=LimitSettings)
    compute: ComputeSettings = Field(default_factory=ComputeSettings)

    @property
    def resolved_data_dir(self) -> Path:
        """The data dir as an absolute path."""
        return self.data_dir.expanduser().resolve()

    @property
    def sqlalchemy_url(self) -> str:
        """The async SQLAlchemy URL of the metadata store."""
        if self.database_url:
            return to_async_url(self.database_url)
        return f"sqlite+aiosqlite:///{self.resolved_data_dir / 'kiln.db'}"

    @property
    def dbfs_root_url(self) -> str:
        """The fsspec URL under which DBFS lives."""
        return self.dbfs_root or str(self.resolved_data_dir / "dbfs")

    @property
    def admin_token_path(self) -> Path:
        """Where the first admin token is written (mode 0600)."""
        return self.resolved_data_dir / "admin-token"

    @property
    def clusters_dir(self) -> Path:
        """Where each cluster keeps its config, secrets, logs and Spark scratch space."""
        return self.resolved_data_dir / "clusters"

    @property
    def secret_key_path(self) -> Path:
        """Where the key that encrypts secrets at rest lives (mode 0600)."""
        return self.resolved_data_dir / "secret.key"


def to_async_url(url: str) -> str:
    """Map a plain database URL to the async driver Kiln uses for it."""
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    if url.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + url.split(":///", 1)[1]
    return url
