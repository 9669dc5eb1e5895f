"""The workspace tree: folders, notebooks (Databricks source format) and files."""

__all__: list[str] = []
