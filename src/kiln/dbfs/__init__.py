"""DBFS and the Files API over an fsspec filesystem confined to one root."""

from kiln.dbfs.store import DbfsStore

__all__ = ["DbfsStore"]
