"""FeatureEngineeringClient: feature tables as Delta tables, with the shape of Databricks' client.

A feature table `catalog.schema.name` is a Delta table (delta-rs, no JVM needed) under the
client's root, with its primary keys and optional timestamp key kept beside the log in
`_kiln_feature_table.json` (Delta readers ignore `_`-prefixed files). DataFrames may be pandas
or Spark (converted with toPandas); with a `spark` session, reads and training sets come back
as Spark DataFrames.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kiln.driver.feature_store.control import ControlPlane, run_context
from kiln.driver.feature_store.lookups import FeatureLookup, join_lookup
from kiln.driver.feature_store.models import log_model_with_lookups, score_with_lookups

__all__ = ["FeatureEngineeringClient", "FeatureTable", "OnlineStoreSpec", "TrainingSet"]

META = "_kiln_feature_table.json"
ROOT_ENV = "KILN_FEATURE_STORE_ROOT"
_NAME = re.compile(r"^[A-Za-z0-9_]+\.[A-Za-z0-9_]+\.[A-Za-z0-9_]+$")


@dataclass(frozen=True)
class FeatureTable:
    """A feature table's name, keys and description."""

    name: str
    primary_keys: list[str]
    timestamp_keys: list[str]
    description: str | None
    path_uri: str


@dataclass(frozen=True)
class OnlineStoreSpec:
    """Kiln's online store (SQLite under the server's data dir): the only one there is."""

    name: str = "kiln-sqlite"


@dataclass
class TrainingSet:
    """The training DataFrame with its looked-up features (see create_training_set)."""

    df: Any
    feature_lookups: list[FeatureLookup]
    label: str | list[str] | None
    exclude_columns: list[str] = field(default_factory=list)
    spark: Any = None

    def load_df(self) -> Any:
        """The joined DataFrame (Spark if the client has a session, else pandas)."""
        return self.spark.createDataFrame(self.df) if self.spark is not None else self.df.copy()


def _pandas(df: Any) -> Any:
    return df.toPandas() if hasattr(df, "toPandas") else df


class FeatureEngineeringClient:
    """Create, write, read and join feature tables; log and score models that use them."""

    def __init__(self, root: str | None = None, spark: Any = None) -> None:
        root = root or os.environ.get(ROOT_ENV)
        if not root:
            raise ValueError(f"Give the feature store a root directory (or set {ROOT_ENV}).")
        self.root = Path(root).expanduser().resolve()
        self.spark = spark
        self.control = ControlPlane()

    # -- tables ----------------------------------------------------------------------------

    def _location(self, name: str) -> Path:
        if not isinstance(name, str) or not _NAME.match(name):
            raise ValueError(f"Feature table name {name!r} must be catalog.schema.table.")
        path = (self.root / Path(*name.lower().split("."))).resolve()
        if not path.is_relative_to(self.root):
            raise ValueError(f"Feature table {name!r} resolves outside the feature store root.")
        return path

    def get_table(self, name: str) -> FeatureTable:
        """A feature table's metadata; ValueError if there is none of that name."""
        path = self._location(name)
        try:
            meta = json.loads((path / META).read_text())
        except FileNotFoundError:
            raise ValueError(f"Feature table {name!r} does not exist.") from None
        return FeatureTable(
            name=name.lower(),
            primary_keys=list(meta["primary_keys"]),
            timestamp_keys=list(meta["timestamp_keys"]),
            description=meta.get("description"),
            path_uri=path.as_uri(),
        )

    def create_table(
        self,
        name: str,
        primary_keys: str | list[str],
        df: Any = None,
        *,
        timestamp_keys: str | list[str] | None = None,
        schema: Any = None,
        description: str | None = None,
    ) -> FeatureTable:
        """Create a feature table from `df` (or an empty one of `schema`, a pyarrow schema)."""
        import pyarrow as pa
        from deltalake import write_deltalake

        path = self._location(name)
        if (path / META).exists():
            raise ValueError(f"Feature table {name!r} already exists.")
        keys = [primary_keys] if isinstance(primary_keys, str) else list(primary_keys)
        ts_keys = (
            [timestamp_keys] if isinstance(timestamp_keys, str) else list(timestamp_keys or [])
        )
        if not keys:
            raise ValueError("A feature table needs at least one primary key.")
        if len(ts_keys) > 1:
            raise ValueError("A feature table has at most one timestamp key.")
        if df is not None:
            table = pa.Table.from_pandas(_pandas(df), preserve_index=False)
        elif schema is not None:
            table = schema.empty_table()
        else:
            raise ValueError("Give df or schema to create a feature table.")
        for key in (*keys, *ts_keys):
            if key not in table.column_names:
                raise ValueError(f"Key column {key!r} is not a column of the feature table.")
        if df is not None:
            self._check_unique(_pandas(df), keys + ts_keys)
        # The control plane first: a name taken there is taken for every client.
        self.control.report(
            "/create",
            {
                "name": name,
                "primary_keys": keys,
                "timestamp_keys": ts_keys,
                "description": description,
            },
        )
        path.mkdir(parents=True, exist_ok=True)
        write_deltalake(str(path), table, mode="error", description=description)
        meta = {"primary_keys": keys, "timestamp_keys": ts_keys, "description": description}
        (path / META).write_text(json.dumps(meta))
        return self.get_table(name)

    @staticmethod
    def _check_unique(df: Any, keys: list[str]) -> None:
        if df.duplicated(subset=keys).any():
            raise ValueError(f"The DataFrame has duplicate rows for the keys {keys}.")

    def write_table(self, name: str, df: Any, mode: str = "merge") -> None:
        """Upsert `df` on the table's keys (mode "merge") or replace its rows ("overwrite")."""
        import pyarrow as pa
        from deltalake import DeltaTable, write_deltalake

        meta = self.get_table(name)
        frame = _pandas(df)
        keys = meta.primary_keys + meta.timestamp_keys
        self._check_unique(frame, keys)
        table = pa.Table.from_pandas(frame, preserve_index=False)
        path = str(self._location(name))
        if mode not in ("merge", "overwrite"):
            raise ValueError(f"Unsupported write mode {mode!r}: use 'merge' or 'overwrite'.")
        self.control.report("/write", {"name": meta.name})
        if mode == "overwrite":
            write_deltalake(path, table, mode="overwrite")
            return
        predicate = " AND ".join(f"t.`{k}` = s.`{k}`" for k in keys)
        (
            DeltaTable(path)
            .merge(table, predicate=predicate, source_alias="s", target_alias="t")
            .when_matched_update_all()
            .when_not_matched_insert_all()
            .execute()
        )

    def read_table(self, name: str) -> Any:
        """The table's rows (Spark if the client has a session, else pandas)."""
        frame = self._read(name)
        return self.spark.createDataFrame(frame) if self.spark is not None else frame

    def _read(self, name: str) -> Any:
        from deltalake import DeltaTable

        self.get_table(name)
        return DeltaTable(str(self._location(name))).to_pandas()

    def drop_table(self, name: str) -> None:
        """Delete a feature table and its files."""
        import shutil

        meta = self.get_table(name)
        shutil.rmtree(self._location(name))
        if self.control.enabled:
            self.control.call("POST", "/delete", {"name": meta.name})

    def publish_table(
        self,
        name: str,
        online_store: OnlineStoreSpec | None = None,
        *,
        filter_condition: str | None = None,
        mode: str = "merge",
        streaming: bool = False,
        features: str | list[str] | None = None,
    ) -> dict[str, Any]:
        """Copy the table's latest values per primary key to the online store (Kiln's)."""
        if online_store is not None and not isinstance(online_store, OnlineStoreSpec):
            raise ValueError("online_store must be an OnlineStoreSpec (Kiln's SQLite store).")
        if streaming or filter_condition is not None:
            raise ValueError("Streaming and filtered publishing are not supported by Kiln.")
        if mode not in ("merge", "overwrite"):
            raise ValueError(f"Unsupported publish mode {mode!r}: use 'merge' or 'overwrite'.")
        if not self.control.enabled:
            raise ValueError("Publishing needs Kiln's control plane (DATABRICKS_HOST, _TOKEN).")
        meta = self.get_table(name)
        frame = self._read(name)
        if meta.timestamp_keys:
            ts = meta.timestamp_keys[0]
            frame = frame.sort_values(ts).drop_duplicates(subset=meta.primary_keys, keep="last")
            frame = frame.drop(columns=[ts])
        if features is not None:
            wanted = [features] if isinstance(features, str) else list(features)
            unknown = [f for f in wanted if f not in frame.columns]
            if unknown:
                raise ValueError(f"Feature table {name!r} has no feature(s) {unknown}.")
            frame = frame[[*meta.primary_keys, *wanted]]
        rows = json.loads(frame.to_json(orient="split", index=False, date_format="iso"))
        body = {"name": meta.name, "mode": mode, "rows": rows}
        return self.control.call("POST", "/publish", body)

    # -- training sets ---------------------------------------------------------------------

    def create_training_set(
        self,
        df: Any,
        feature_lookups: list[FeatureLookup],
        label: str | list[str] | None,
        exclude_columns: list[str] | None = None,
    ) -> TrainingSet:
        """`df` with every lookup's features joined (point in time where asked)."""
        frame = self.join_features(_pandas(df), feature_lookups)
        if "notebook_path" in run_context():
            names = sorted({lookup.table_name.lower() for lookup in feature_lookups})
            self.control.report("/consume", {"names": names})
        if exclude_columns:
            frame = frame.drop(columns=[c for c in exclude_columns if c in frame.columns])
        return TrainingSet(
            frame, list(feature_lookups), label, list(exclude_columns or []), self.spark
        )

    def join_features(self, frame: Any, feature_lookups: list[FeatureLookup]) -> Any:
        """A pandas DataFrame with the lookups' features joined."""
        for lookup in feature_lookups:
            meta = self.get_table(lookup.table_name)
            frame = join_lookup(
                frame, self._read(lookup.table_name), lookup, meta.primary_keys, meta.timestamp_keys
            )
        return frame

    # -- models ----------------------------------------------------------------------------

    def log_model(
        self,
        model: Any,
        artifact_path: str,
        *,
        flavor: Any,
        training_set: TrainingSet,
        registered_model_name: str | None = None,
        **kwargs: Any,
    ) -> Any:
        """Log `model` with its feature lookups packaged beside it (score_batch reads them)."""
        logged = log_model_with_lookups(
            model, artifact_path, flavor, training_set, registered_model_name, **kwargs
        )
        version = getattr(logged, "version", None)
        if registered_model_name and version is not None and training_set.feature_lookups:
            names = sorted({lookup.table_name.lower() for lookup in training_set.feature_lookups})
            self.control.report(
                "/consume",
                {"names": names, "model_name": registered_model_name, "model_version": version},
            )
        return logged

    def score_batch(self, model_uri: str, df: Any, result_type: str = "double") -> Any:
        """`df` with the model's features looked up and a `prediction` column."""
        frame = score_with_lookups(self, model_uri, _pandas(df))
        return self.spark.createDataFrame(frame) if self.spark is not None else frame
