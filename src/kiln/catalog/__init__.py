"""The catalog: Unity Catalog shaped catalogs, schemas, tables and volumes over Delta Lake."""

__all__: list[str] = []
