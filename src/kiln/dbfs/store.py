"""DBFS's file store: an fsspec filesystem rooted at one URL (a local folder by default)."""

from __future__ import annotations

import fsspec
from fsspec.spec import AbstractFileSystem

__all__ = ["DbfsStore"]


class DbfsStore:
    """The root every DBFS and Files API path is confined to."""

    def __init__(self, root_url: str) -> None:
        fs, root = fsspec.core.url_to_fs(root_url)
        self.fs: AbstractFileSystem = fs
        self.root: str = root.rstrip("/")
        if self.fs.protocol in ("file", ("file", "local")) or "file" in self.fs.protocol:
            self.fs.makedirs(self.root, exist_ok=True)
