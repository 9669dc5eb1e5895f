"""The catalog: Unity Catalog shaped catalogs, schemas, tables and volumes over Delta Lake.

Invariants: the store is the truth for names (lower-cased, three levels), each table's Delta
log the truth for its data and columns; every location lies inside the DBFS root and no two
tables or volumes share or nest locations; `main.default` and `hive_metastore.default` always
exist. Services are plain async functions over an `AsyncSession`; blocking delta-rs and
filesystem work runs in a thread.
"""

from kiln.catalog import metastore, names, tables, volumes
from kiln.catalog.storage import Storage
from kiln.catalog.tables import TableView, register_table

__all__ = ["Storage", "TableView", "metastore", "names", "register_table", "tables", "volumes"]
