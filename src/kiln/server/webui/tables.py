"""A Delta table's history and a preview of its rows at a version, for the data pages.

The catalog names the table (and answers 404 for a missing one); its Delta log, read with
delta-rs in a thread, answers the rest. Values are made JSON-safe as the notebook's tables are
(dates and decimals as text).
"""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from kiln.catalog import Storage, tables
from kiln.errors import InvalidParameterValue, ResourceDoesNotExist

__all__ = ["MAX_PREVIEW_ROWS", "table_history", "table_preview"]

MAX_PREVIEW_ROWS = 1000


async def _location(session: AsyncSession, storage: Storage, full_name: object) -> str:
    if not isinstance(full_name, str) or not full_name:
        raise InvalidParameterValue("full_name is required.")
    view = await tables.get_table(session, storage, full_name, with_log=False)
    return storage.url(view.row.storage_location)


def _open(url: str, version: int | None = None) -> Any:
    import deltalake

    try:
        return deltalake.DeltaTable(url, version=version)
    except deltalake.exceptions.TableNotFoundError as exc:
        raise ResourceDoesNotExist("The table has no Delta log yet.") from exc
    except Exception as exc:
        if version is not None:
            raise InvalidParameterValue(f"Version {version} of the table cannot be read.") from exc
        raise


async def table_history(
    session: AsyncSession, storage: Storage, full_name: object
) -> list[dict[str, Any]]:
    """The table's commits, newest first (version, timestamp, operation and its details)."""
    url = await _location(session, storage, full_name)

    def read() -> list[dict[str, Any]]:
        entries = _open(url).history()
        return [
            {
                "version": e.get("version"),
                "timestamp": e.get("timestamp"),
                "operation": e.get("operation"),
                "operationParameters": {
                    str(k): str(v) for k, v in (e.get("operationParameters") or {}).items()
                },
                "operationMetrics": {
                    str(k): str(v) for k, v in (e.get("operationMetrics") or {}).items()
                },
            }
            for e in entries
        ]

    return await asyncio.to_thread(read)


def _cell(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [_cell(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _cell(v) for k, v in value.items()}
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


async def table_preview(
    session: AsyncSession,
    storage: Storage,
    full_name: object,
    version: int | None = None,
    limit: int = 100,
) -> dict[str, Any]:
    """The first `limit` rows of the table (at `version`, the latest without), with schema."""
    if version is not None and version < 0:
        raise InvalidParameterValue("version must be a non-negative integer.")
    if not 1 <= limit <= MAX_PREVIEW_ROWS:
        raise InvalidParameterValue(f"limit must be between 1 and {MAX_PREVIEW_ROWS}.")
    url = await _location(session, storage, full_name)

    def read() -> dict[str, Any]:
        table = _open(url, version)
        data = table.to_pyarrow_dataset().head(limit + 1)
        rows = [[_cell(v) for v in row.values()] for row in data.to_pylist()]
        schema = [{"name": f.name, "type": str(f.type)} for f in data.schema]
        return {
            "version": table.version(),
            "schema": schema,
            "data": rows[:limit],
            "truncated": len(rows) > limit,
        }

    return await asyncio.to_thread(read)
