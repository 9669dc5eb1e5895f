"""Feature lookups and their joins: exact-key joins, and point-in-time (as-of) joins.

A point-in-time lookup gives each row of the training DataFrame the feature values of the
latest feature row with the same key whose timestamp is at or before the row's lookup
timestamp (never one from its future); a row with no such feature row gets nulls. Row order and
count of the training DataFrame are kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["FeatureLookup", "join_lookup"]

_ROW = "__kiln_row__"


@dataclass
class FeatureLookup:
    """Which features of which table to join, on which key (as databricks.feature_engineering)."""

    table_name: str
    lookup_key: str | list[str]
    feature_names: str | list[str] | None = None
    timestamp_lookup_key: str | list[str] | None = None
    rename_outputs: dict[str, str] = field(default_factory=dict)

    @property
    def lookup_keys(self) -> list[str]:
        """The lookup key columns, in the order of the table's primary keys."""
        return [self.lookup_key] if isinstance(self.lookup_key, str) else list(self.lookup_key)

    @property
    def timestamp_key(self) -> str | None:
        """The training DataFrame's timestamp column for a point-in-time lookup."""
        key = self.timestamp_lookup_key
        if isinstance(key, list):
            if len(key) > 1:
                raise ValueError("Only one timestamp_lookup_key is supported.")
            return key[0] if key else None
        return key

    def to_spec(self) -> dict[str, Any]:
        """A JSON-able description (packaged with a logged model)."""
        return {
            "table_name": self.table_name,
            "lookup_key": self.lookup_keys,
            "feature_names": self.feature_names,
            "timestamp_lookup_key": self.timestamp_key,
            "rename_outputs": dict(self.rename_outputs),
        }

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> FeatureLookup:
        """The lookup a spec describes."""
        return cls(
            table_name=spec["table_name"],
            lookup_key=spec["lookup_key"],
            feature_names=spec.get("feature_names"),
            timestamp_lookup_key=spec.get("timestamp_lookup_key"),
            rename_outputs=dict(spec.get("rename_outputs") or {}),
        )


def join_lookup(
    df: Any,
    features: Any,
    lookup: FeatureLookup,
    primary_keys: list[str],
    timestamp_keys: list[str],
) -> Any:
    """`df` (pandas) with the lookup's features from `features` (the table, pandas) joined."""
    import pandas as pd

    keys = lookup.lookup_keys
    if len(keys) != len(primary_keys):
        raise ValueError(
            f"lookup_key {keys} does not match the primary keys {primary_keys} of "
            f"{lookup.table_name}."
        )
    missing = [k for k in keys if k not in df.columns]
    if missing:
        raise ValueError(f"The DataFrame has no lookup key column(s) {missing}.")
    names = lookup.feature_names
    wanted = [names] if isinstance(names, str) else names
    if wanted is None:
        wanted = [c for c in features.columns if c not in primary_keys and c not in timestamp_keys]
    unknown = [n for n in wanted if n not in features.columns]
    if unknown:
        raise ValueError(f"Feature table {lookup.table_name} has no feature(s) {unknown}.")
    outputs = {n: lookup.rename_outputs.get(n, n) for n in wanted}
    clash = [o for o in outputs.values() if o in df.columns]
    if clash:
        raise ValueError(f"Feature output column(s) {clash} already exist in the DataFrame.")
    right = features[[*primary_keys, *timestamp_keys, *wanted]].rename(
        columns={**dict(zip(primary_keys, keys, strict=True)), **outputs}
    )
    left = df.reset_index(drop=True)
    left[_ROW] = range(len(left))
    ts = lookup.timestamp_key
    if timestamp_keys and ts is not None:
        if ts not in left.columns:
            raise ValueError(f"The DataFrame has no timestamp_lookup_key column {ts!r}.")
        feature_ts = timestamp_keys[0]
        right = right.rename(columns={feature_ts: "__kiln_feature_ts__"})
        right = right.dropna(subset=["__kiln_feature_ts__"]).sort_values("__kiln_feature_ts__")
        with_ts = left[left[ts].notna()].sort_values(ts)
        # Delta hands timestamps back in microseconds; as-of keys must share one unit.
        right["__kiln_feature_ts__"] = right["__kiln_feature_ts__"].astype(with_ts[ts].dtype)
        joined = pd.merge_asof(
            with_ts,
            right,
            left_on=ts,
            right_on="__kiln_feature_ts__",
            by=keys,
            direction="backward",
            allow_exact_matches=True,
        ).drop(columns=["__kiln_feature_ts__"])
        without_ts = left[left[ts].isna()]
        joined = pd.concat([joined, without_ts], ignore_index=True)
    else:
        if timestamp_keys:
            # No lookup timestamp: the latest value of each key.
            right = (
                right.sort_values(timestamp_keys[0])
                .drop_duplicates(subset=keys, keep="last")
                .drop(columns=timestamp_keys)
            )
        joined = left.merge(right, on=keys, how="left", validate="many_to_one")
    return joined.sort_values(_ROW).drop(columns=[_ROW]).reset_index(drop=True)
