"""Delta Lake for a cluster's Spark, on delta-rs: the `delta` data source, catalog names in
SQL and DataFrames, and `delta.tables.DeltaTable`.

Invariants: reads, file writes and the row work of UPDATE, DELETE and MERGE run as Spark
tasks; each write is one commit to the log, made by the driver; appends retry on a newer
version, other conflicts fail; tables with deletion vectors or column mapping are refused
rather than misread.
"""

__all__: list[str] = []
