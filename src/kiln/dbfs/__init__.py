"""DBFS API 2.0 and the Files API over an fsspec filesystem confined to one root.

Invariants: every client path is cleaned by `paths` before it reaches the store, and no read or
write leaves the root (symlinks included, on a local root); a file appears only whole, renamed
from the staging area; bodies stream through in blocks and are never held in memory whole;
streaming handles and multipart sessions are durable rows, usable only by their creator.
"""

from kiln.dbfs import conditions, files, forms, handles, paths, streams, uploads
from kiln.dbfs.store import DbfsStore, Entry

__all__ = [
    "DbfsStore",
    "Entry",
    "conditions",
    "files",
    "forms",
    "handles",
    "paths",
    "streams",
    "uploads",
]
