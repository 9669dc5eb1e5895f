"""One typed settings tree, built once at start and passed in (no module-level config)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["KilnSettings", "LimitSettings"]


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
