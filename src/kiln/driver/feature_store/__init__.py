"""A feature store with the shape of `databricks.feature_engineering`, for notebook code.

Invariants: feature tables are Delta tables under the client's root (names confined to it);
primary keys (plus the timestamp key) are unique in every table, merge writes upsert on them;
a point-in-time lookup never joins a feature value from a row's future.
"""

from kiln.driver.feature_store.client import (
    FeatureEngineeringClient,
    FeatureTable,
    OnlineStoreSpec,
    TrainingSet,
)
from kiln.driver.feature_store.lookups import FeatureLookup

__all__ = [
    "FeatureEngineeringClient",
    "FeatureLookup",
    "FeatureTable",
    "OnlineStoreSpec",
    "TrainingSet",
]
