"""Wire schemas: pydantic models named and shaped as in Databricks' REST reference."""

__all__: list[str] = []
