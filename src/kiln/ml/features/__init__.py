"""The feature store's control plane: feature tables' metadata and their lineage.

Invariants: a feature table is known once (by its full name, lower case); lineage rows are
recorded once per (table, role, kind, ref, detail) and go with their table.
"""

from kiln.ml.features.lineage import (
    check_table_name,
    create_table,
    delete_table,
    find_table,
    get_table,
    record_consumers,
    record_write,
    table_lineage,
)
from kiln.ml.features.publishing import ONLINE_STORE_NAME, publish_table

__all__ = [
    "ONLINE_STORE_NAME",
    "check_table_name",
    "create_table",
    "delete_table",
    "find_table",
    "get_table",
    "publish_table",
    "record_consumers",
    "record_write",
    "table_lineage",
]
