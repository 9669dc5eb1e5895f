"""Publishing a feature table to the online store (its latest values per primary key)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from kiln.ml.features.lineage import find_table
from kiln.ml.serving.online_store import OnlineStore
from kiln.store.models import now_utc, to_epoch_ms

__all__ = ["ONLINE_STORE_NAME", "publish_table"]

ONLINE_STORE_NAME = "kiln-sqlite"


async def publish_table(
    session: AsyncSession, store: OnlineStore, body: dict[str, Any]
) -> dict[str, Any]:
    """Copy the client's latest rows of a feature table into the online store."""
    row = await find_table(session, body.get("name"))
    mode = body.get("mode", "merge")
    count = await store.publish(row.name, list(row.primary_keys), body.get("rows"), mode)
    published = {"name": ONLINE_STORE_NAME, "publish_mode": mode.upper()}
    published["last_published_timestamp"] = to_epoch_ms(now_utc())
    row.online_stores = [published]
    return {"name": row.name, "online_store": published, "num_keys": count}
