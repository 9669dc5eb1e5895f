"""Inference tables: every scored request and its response, appended in batches to Delta.

An endpoint whose config has `auto_capture_config` (catalog_name, schema_name,
table_name_prefix, enabled) gets the catalog table `<catalog>.<schema>.<prefix>_payload`, a
MANAGED Delta table registered through kiln.catalog (created empty with the columns below when
the config is deployed; reused if it exists). Records are buffered in memory and appended with
`deltalake.write_deltalake` at most every FLUSH_INTERVAL_S or FLUSH_ROWS rows, one writer per
table at a time; the server's stop flushes what is left.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from kiln.catalog import Storage, metastore, tables
from kiln.errors import ResourceAlreadyExists

__all__ = [
    "COLUMNS",
    "Capture",
    "CaptureRecord",
    "InferenceTables",
    "ensure_payload_table",
    "payload_table_name",
]

log = logging.getLogger("kiln.ml.serving")


@dataclass(frozen=True)
class CaptureRecord:
    """One scored request, for the endpoint's inference table."""

    endpoint_name: str
    capture_config: dict[str, Any]
    served_entity: str
    model_name: str
    entity_version: str
    request: bytes
    response: bytes
    status: int
    latency_ms: float
    timestamp_ms: int


Capture = Callable[[CaptureRecord], None]

FLUSH_ROWS = 100
FLUSH_INTERVAL_S = 1.0

# (column, Delta type); the shape of Databricks' payload tables, plus the served entity.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("databricks_request_id", "string"),
    ("timestamp_ms", "long"),
    ("status_code", "integer"),
    ("execution_time_ms", "double"),
    ("request", "string"),
    ("response", "string"),
    ("endpoint_name", "string"),
    ("served_entity_name", "string"),
    ("model_name", "string"),
    ("model_version", "string"),
)


def payload_table_name(capture: dict[str, Any]) -> str:
    """`catalog.schema.<prefix>_payload` of an auto_capture_config."""
    return (
        f"{capture['catalog_name']}.{capture['schema_name']}.{capture['table_name_prefix']}_payload"
    )


async def ensure_payload_table(
    session: AsyncSession, storage: Storage, owner: str, capture: dict[str, Any]
) -> str:
    """Create (or find) the payload table of `capture`; its DBFS location."""
    await metastore.ensure_defaults(session)
    name = f"{capture['table_name_prefix']}_payload"
    columns = [
        {
            "name": column,
            "position": i,
            "nullable": True,
            "type_json": json.dumps(
                {"name": column, "type": kind, "nullable": True, "metadata": {}}
            ),
        }
        for i, (column, kind) in enumerate(COLUMNS)
    ]
    try:
        view = await tables.create_table(
            session,
            storage,
            owner,
            capture["catalog_name"],
            capture["schema_name"],
            name,
            table_type="MANAGED",
            columns=columns,
            comment="Inference table of a serving endpoint (request and response payloads).",
        )
    except ResourceAlreadyExists:
        view = await tables.get_table(session, storage, payload_table_name(capture), with_log=False)
    return view.row.storage_location


class InferenceTables:
    """Buffers capture records per payload table and appends them in batches."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self._buffers: dict[str, list[CaptureRecord]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def record(self, rec: CaptureRecord) -> None:
        """Queue one record (called on the event loop, after the response is known)."""
        location = rec.capture_config.get("_location")
        if not isinstance(location, str):
            return
        buffer = self._buffers.setdefault(location, [])
        buffer.append(rec)
        if len(buffer) >= FLUSH_ROWS:
            self._flush_soon(location, 0.0)
        elif location not in self._timers:
            self._flush_soon(location, FLUSH_INTERVAL_S)

    def _flush_soon(self, location: str, delay: float) -> None:
        timer = self._timers.pop(location, None)
        if timer is not None:
            timer.cancel()
        loop = asyncio.get_running_loop()

        def start() -> None:
            self._timers.pop(location, None)
            task = loop.create_task(self.flush(location))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        if delay <= 0:
            start()
        else:
            self._timers[location] = loop.call_later(delay, start)

    async def flush(self, location: str) -> None:
        """Append what is buffered for one table."""
        lock = self._locks.setdefault(location, asyncio.Lock())
        async with lock:
            batch = self._buffers.pop(location, [])
            if not batch:
                return
            try:
                await asyncio.to_thread(_append, self.storage.url(location), batch)
            except Exception:
                log.exception("inference table append to %s failed (%d rows)", location, len(batch))

    async def flush_all(self) -> None:
        """Append everything buffered (server stop)."""
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        await asyncio.gather(*(self.flush(loc) for loc in list(self._buffers)))


def _append(url: str, batch: list[CaptureRecord]) -> None:
    import pyarrow as pa
    from deltalake import write_deltalake

    rows = {
        "databricks_request_id": [uuid.uuid4().hex for _ in batch],
        "timestamp_ms": [r.timestamp_ms for r in batch],
        "status_code": [r.status for r in batch],
        "execution_time_ms": [r.latency_ms for r in batch],
        "request": [r.request.decode("utf-8", "replace") for r in batch],
        "response": [r.response.decode("utf-8", "replace") for r in batch],
        "endpoint_name": [r.endpoint_name for r in batch],
        "served_entity_name": [r.served_entity for r in batch],
        "model_name": [r.model_name for r in batch],
        "model_version": [r.entity_version for r in batch],
    }
    schema = pa.schema(
        [
            ("databricks_request_id", pa.string()),
            ("timestamp_ms", pa.int64()),
            ("status_code", pa.int32()),
            ("execution_time_ms", pa.float64()),
            ("request", pa.string()),
            ("response", pa.string()),
            ("endpoint_name", pa.string()),
            ("served_entity_name", pa.string()),
            ("model_name", pa.string()),
            ("model_version", pa.string()),
        ]
    )
    write_deltalake(url, pa.table(rows, schema=schema), mode="append")
