"""Concurrent-modification errors as Databricks words them (`delta.exceptions` in a context).

delta-rs checks a commit against the commits made since its snapshot was read and refuses it
with a CommitFailedError; Kiln's own overwrite checks the same way (see
`source.check_overwrite`). Either way the writer that lost sees one of these, the table keeps
the winner's commit, and nothing is half-written.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

__all__ = [
    "ConcurrentAppendException",
    "ConcurrentDeleteDeleteException",
    "ConcurrentDeleteReadException",
    "ConcurrentModificationException",
    "ConcurrentTransactionException",
    "MetadataChangedException",
    "ProtocolChangedException",
    "check_overwrite",
    "classify",
    "translated",
]

_RETRY = "Please try the operation again."


class ConcurrentModificationException(RuntimeError):
    """Another writer changed the table in a way this write conflicts with."""

    condition = "DELTA_CONCURRENT_MODIFICATION"

    def __init__(self, uri: str, detail: str = "") -> None:
        self.uri = uri
        text = f"[{self.condition}] {type(self).__name__}: {self.explain()} {_RETRY}"
        text += f"\nTable: {uri}"
        if detail:
            text += f"\n{detail}"
        super().__init__(text)

    def explain(self) -> str:
        """What the concurrent writer did."""
        return "The Delta table has been changed by a concurrent update."


class ConcurrentAppendException(ConcurrentModificationException):
    """Files were added by a concurrent update that this operation should have read."""

    condition = "DELTA_CONCURRENT_APPEND"

    def explain(self) -> str:
        return "Files were added to the root of the table by a concurrent update."


class ConcurrentDeleteReadException(ConcurrentModificationException):
    """Files this operation read were deleted by a concurrent update."""

    condition = "DELTA_CONCURRENT_DELETE_READ"

    def explain(self) -> str:
        return (
            "This transaction attempted to read one or more files that were deleted by a "
            "concurrent update."
        )


class ConcurrentDeleteDeleteException(ConcurrentModificationException):
    """Files this operation deletes were deleted by a concurrent update."""

    condition = "DELTA_CONCURRENT_DELETE_DELETE"

    def explain(self) -> str:
        return (
            "This transaction attempted to delete one or more files that were deleted by a "
            "concurrent update."
        )


class MetadataChangedException(ConcurrentModificationException):
    """The table's metadata (schema, properties) changed concurrently."""

    condition = "DELTA_METADATA_CHANGED"

    def explain(self) -> str:
        return "The metadata of the Delta table has been changed by a concurrent update."


class ProtocolChangedException(ConcurrentModificationException):
    """The table's protocol changed concurrently."""

    condition = "DELTA_PROTOCOL_CHANGED"

    def explain(self) -> str:
        return "The protocol version of the Delta table has been changed by a concurrent update."


class ConcurrentTransactionException(ConcurrentModificationException):
    """Another writer committed the same transaction."""

    condition = "DELTA_CONCURRENT_TRANSACTION"

    def explain(self) -> str:
        return "Another writer committed a transaction with the same application id."


# delta-rs' CommitConflictError wording → the Databricks exception that says the same.
_BY_WORDING: list[tuple[str, type[ConcurrentModificationException]]] = [
    ("added new data", ConcurrentAppendException),
    ("deleted data this operation read", ConcurrentDeleteReadException),
    ("deleted the same data", ConcurrentDeleteDeleteException),
    ("metadata changed", MetadataChangedException),
    ("protocol changed", ProtocolChangedException),
    ("concurrent transaction", ConcurrentTransactionException),
]


def classify(uri: str, message: str) -> ConcurrentModificationException:
    """The Databricks exception for a delta-rs commit conflict message."""
    lowered = message.lower()
    for wording, kind in _BY_WORDING:
        if wording in lowered:
            return kind(uri, f"delta-rs: {message}")
    return ConcurrentModificationException(uri, f"delta-rs: {message}")


@contextlib.contextmanager
def translated(uri: str) -> Iterator[None]:
    """Raise delta-rs commit conflicts of the block as Databricks' exceptions."""
    from deltalake.exceptions import CommitFailedError

    try:
        yield
    except CommitFailedError as exc:
        raise classify(uri, str(exc)) from exc


# Commits that change no rows: an overwrite that read the table before them may still commit.
_DATA_PRESERVING = {"OPTIMIZE", "VACUUM START", "VACUUM END"}


def check_overwrite(uri: str, table: object, read_version: int | None) -> None:
    """Raise ConcurrentAppendException when rows were committed to the table after an
    overwrite read it at `read_version` (the overwrite would drop them unread)."""
    if read_version is None:
        return
    latest = int(table.version())  # type: ignore[attr-defined]
    if latest <= read_version:
        return
    commits = table.history(latest - read_version)  # type: ignore[attr-defined]
    changed = [
        c
        for c in commits
        if int(c.get("version", latest)) > read_version
        and str(c.get("operation", "")).upper() not in _DATA_PRESERVING
    ]
    if changed:
        first = min(changed, key=lambda c: int(c.get("version", latest)))
        raise ConcurrentAppendException(
            uri,
            f"Conflicting commit: version {first.get('version')} "
            f"({first.get('operation')}), made after this overwrite read version {read_version}.",
        )
