"""The ML area's long-lived services for one server, built on the area's first request."""

from __future__ import annotations

from dataclasses import dataclass

from kiln.catalog import Storage
from kiln.dbfs import DbfsStore
from kiln.ml.serving import ServingEndpoints
from kiln.ml.tracking import MlflowTracking, mlflow_store_uri
from kiln.ml.webhooks import WebhookDispatcher
from kiln.secrets import SecretBox
from kiln.settings import KilnSettings
from kiln.store import Database

__all__ = ["MlServices"]


@dataclass
class MlServices:
    """MLflow tracking and registry, serving endpoints, and the DBFS root models live in."""

    settings: KilnSettings
    dbfs: DbfsStore
    tracking: MlflowTracking
    serving: ServingEndpoints
    webhooks: WebhookDispatcher

    @classmethod
    def build(cls, settings: KilnSettings, dbfs: DbfsStore, db: Database) -> MlServices:
        """The services for `settings` (nothing is loaded until first used)."""
        uri = mlflow_store_uri(settings.database_url, settings.resolved_data_dir)
        serving = ServingEndpoints(
            db, dbfs, settings.resolved_data_dir / "serving", Storage(settings.dbfs_root_url)
        )
        # The workspace key that encrypts secrets also encrypts webhook secrets.
        webhooks = WebhookDispatcher(db, SecretBox.from_key_file(settings.secret_key_path))
        return cls(
            settings=settings,
            dbfs=dbfs,
            tracking=MlflowTracking(uri),
            serving=serving,
            webhooks=webhooks,
        )

    async def stop(self) -> None:
        """Stop every process the ML services started (server shutdown)."""
        await self.webhooks.stop()
        await self.serving.stop()
