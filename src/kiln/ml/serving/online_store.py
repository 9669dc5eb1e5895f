"""The online store: the latest feature values per primary key, in SQLite under the data dir.

`publish` (the feature-engineering client's `publish_table`) copies a feature table's latest
row per primary key in; serving endpoints whose model was logged with feature lookups read them
by key at request time (see online_lookup). Keys are stored as the JSON list of the primary key
values in the table's key order, with integral floats written as integers, so that a key sent
in a scoring request (JSON numbers) finds the row a DataFrame published.
"""

from __future__ import annotations

import asyncio
import json
import math
import sqlite3
import time
from pathlib import Path
from typing import Any

from kiln.errors import InvalidParameterValue

__all__ = ["ONLINE_STORE_ENV", "OnlineStore", "key_of"]

ONLINE_STORE_ENV = "KILN_ONLINE_STORE"
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS online_features ("
    " table_name TEXT NOT NULL, key TEXT NOT NULL, features TEXT NOT NULL,"
    " PRIMARY KEY (table_name, key))",
    "CREATE TABLE IF NOT EXISTS online_tables ("
    " table_name TEXT PRIMARY KEY, primary_keys TEXT NOT NULL, published_at INTEGER NOT NULL)",
)


def _plain(value: Any) -> Any:
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    return value


def key_of(values: list[Any]) -> str:
    """The stored form of one primary key (the JSON list of its values)."""
    return json.dumps([_plain(v) for v in values], default=str)


def connect(path: Path) -> sqlite3.Connection:
    """A connection to the store, its tables created if need be."""
    db = sqlite3.connect(path, timeout=30)
    for statement in _SCHEMA:
        db.execute(statement)
    return db


class OnlineStore:
    """One server's online store (a SQLite file)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = asyncio.Lock()

    async def publish(self, table: str, primary_keys: list[str], rows: Any, mode: str) -> int:
        """Copy `rows` ({"columns": [...], "data": [[...]]}) in; how many keys it holds."""
        if mode not in ("merge", "overwrite"):
            raise InvalidParameterValue(f"Invalid mode {mode!r}: use 'merge' or 'overwrite'.")
        if not isinstance(rows, dict):
            raise InvalidParameterValue("Field 'rows' must be an object with columns and data.")
        columns, data = rows.get("columns"), rows.get("data")
        if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
            raise InvalidParameterValue("Field 'rows.columns' must be a list of column names.")
        if not isinstance(data, list) or not all(
            isinstance(r, list) and len(r) == len(columns) for r in data
        ):
            raise InvalidParameterValue("Field 'rows.data' must be rows as long as 'columns'.")
        missing = [k for k in primary_keys if k not in columns]
        if missing:
            raise InvalidParameterValue(f"The rows have no primary key column(s) {missing}.")
        entries: dict[str, str] = {}
        for row in data:
            record = dict(zip(columns, row, strict=True))
            key = key_of([record[k] for k in primary_keys])
            if key in entries:
                raise InvalidParameterValue(f"The rows hold the primary key {key} twice.")
            features = {c: v for c, v in record.items() if c not in primary_keys}
            entries[key] = json.dumps(features, default=str)
        async with self._lock:
            return await asyncio.to_thread(self._write, table, primary_keys, entries, mode)

    def _write(
        self, table: str, primary_keys: list[str], entries: dict[str, str], mode: str
    ) -> int:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with connect(self.path) as db:
            if mode == "overwrite":
                db.execute("DELETE FROM online_features WHERE table_name = ?", (table,))
            db.executemany(
                "INSERT OR REPLACE INTO online_features (table_name, key, features) "
                "VALUES (?, ?, ?)",
                [(table, k, v) for k, v in entries.items()],
            )
            db.execute(
                "INSERT OR REPLACE INTO online_tables VALUES (?, ?, ?)",
                (table, json.dumps(primary_keys), int(time.time() * 1000)),
            )
            (count,) = db.execute(
                "SELECT count(*) FROM online_features WHERE table_name = ?", (table,)
            ).fetchone()
        return int(count)

    async def drop(self, table: str) -> None:
        """Forget a table's online rows."""
        if not self.path.exists():
            return
        async with self._lock:
            await asyncio.to_thread(self._drop, table)

    def _drop(self, table: str) -> None:
        with connect(self.path) as db:
            db.execute("DELETE FROM online_features WHERE table_name = ?", (table,))
            db.execute("DELETE FROM online_tables WHERE table_name = ?", (table,))
