"""Delivery of a cluster's logs to its `cluster_log_conf` destination in DBFS or a volume:
driver logs under `<destination>/<cluster_id>/driver/`, executor logs under
`.../executor/<app-id>/<executor-id>/`, init-script logs under `.../init_scripts/`, as
Databricks lays them out. Runs periodically while the cluster runs and once at termination."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

from kiln.compute.spec import LogDestination
from kiln.dbfs import DbfsStore
from kiln.dbfs.paths import files_path

__all__ = ["deliver_files"]


def _deliver(store: DbfsStore, base: str, files: list[tuple[str, Path]]) -> int:
    delivered = 0
    for relative, local in files:
        target = files_path(f"{base}/{relative}", what="log path")
        staged = store.staging_location()
        try:
            with open(local, "rb") as src, store.open_write(staged) as dst:
                shutil.copyfileobj(src, dst, 1024 * 1024)
            store.publish(staged, target, overwrite=True)
        except FileNotFoundError:
            store.discard(staged)
            continue
        except BaseException:
            store.discard(staged)
            raise
        delivered += 1
    return delivered


async def deliver_files(
    store: DbfsStore, destination: LogDestination, cluster_id: str, files: list[tuple[str, Path]]
) -> int:
    """Copy `files` (path under the cluster's folder, local file) to the destination."""
    base = f"{destination.path.rstrip('/')}/{cluster_id}"
    return await asyncio.to_thread(_deliver, store, base, files)
