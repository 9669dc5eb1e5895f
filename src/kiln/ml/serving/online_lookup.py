"""Scoring a model logged with feature lookups: its features looked up by key in the online
store at request time, so that a request carries only the keys (and non-feature columns).

Runs in the scorer process. A feature the request already carries is taken from the request
(as in Databricks); a key with no row in the online store, or a table never published, is a
400 that names it. Label and excluded columns of the training set never reach the model.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Any

from kiln.ml.serving.online_store import ONLINE_STORE_ENV, key_of

__all__ = ["SPEC_FILE", "LookupModel", "wrap_with_lookups"]

SPEC_FILE = "feature_spec.json"


def _bad_request(message: str) -> Exception:
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import BAD_REQUEST

    return MlflowException(message, error_code=BAD_REQUEST)


class LookupModel:
    """A pyfunc model with its feature lookups done against the online store first."""

    def __init__(self, model: Any, spec: dict[str, Any], store: Path) -> None:
        self.model = model
        self.metadata = model.metadata
        self.spec = spec
        self.store = store

    def _features(self, db: sqlite3.Connection, frame: Any, lookup: dict[str, Any]) -> None:
        table = str(lookup["table_name"]).lower()
        keys = list(lookup["lookup_key"])
        names = lookup.get("feature_names")
        wanted = [names] if isinstance(names, str) else names
        renames = dict(lookup.get("rename_outputs") or {})
        published = db.execute(
            "SELECT 1 FROM online_tables WHERE table_name = ?", (table,)
        ).fetchone()
        if published is None:
            raise _bad_request(f"Feature table {table} is not published to the online store.")
        needed = [n for n in wanted or [] if renames.get(n, n) not in frame.columns]
        if wanted is not None and not needed:
            return  # the request carries every feature of this lookup
        absent = [k for k in keys if k not in frame.columns]
        if absent:
            raise _bad_request(f"The request has no lookup key column(s) {absent} for {table}.")
        rows: list[dict[str, Any]] = []
        missing: list[str] = []
        for values in frame[keys].itertuples(index=False, name=None):
            key = key_of(list(values))
            found = db.execute(
                "SELECT features FROM online_features WHERE table_name = ? AND key = ?",
                (table, key),
            ).fetchone()
            if found is None:
                missing.append(key)
                rows.append({})
            else:
                rows.append(json.loads(found[0]))
        if missing:
            raise _bad_request(
                f"No row in the online store of {table} for the key(s) {', '.join(missing)} "
                f"({', '.join(keys)})."
            )
        names_now = wanted if wanted is not None else list(rows[0]) if rows else []
        for name in names_now:
            out = renames.get(name, name)
            if out in frame.columns:
                continue
            if rows and any(name not in r for r in rows):
                raise _bad_request(f"Feature table {table} has no feature {name!r} online.")
            frame[out] = [r.get(name) for r in rows]

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        """Look the features up, then predict with the model."""
        import pandas as pd

        frame = data.copy() if isinstance(data, pd.DataFrame) else pd.DataFrame(data)
        if not self.store.exists():
            raise _bad_request("Nothing is published to the online store yet.")
        db = sqlite3.connect(f"file:{self.store}?mode=ro", uri=True, timeout=30)
        try:
            for lookup in self.spec.get("feature_lookups") or []:
                self._features(db, frame, lookup)
        finally:
            db.close()
        label = self.spec.get("label")
        drop = [label] if isinstance(label, str) else list(label or [])
        drop += list(self.spec.get("exclude_columns") or [])
        frame = frame.drop(columns=[c for c in drop if c in frame.columns])
        schema = self.metadata.get_input_schema()
        if schema is not None and schema.has_input_names():
            absent = [n for n in schema.input_names() if n not in frame.columns]
            if absent:
                raise _bad_request(f"The request has no column(s) {absent} the model needs.")
            frame = frame[schema.input_names()]
        return self.model.predict(frame, params=params)


def wrap_with_lookups(model: Any, model_dir: str) -> Any:
    """`model` wrapped with its lookups if it was logged with them, else `model` itself."""
    spec_path = Path(model_dir) / SPEC_FILE
    if not spec_path.exists():
        return model
    spec = json.loads(spec_path.read_text())
    store = Path(os.environ.get(ONLINE_STORE_ENV) or "online-store.db")
    return LookupModel(model, spec, store)
