"""The one commit of an UPDATE, DELETE or MERGE: remove actions for the files it rewrote, add
actions for the files the executors wrote, and the operation as Databricks' history shows it.

Conflicts are checked as Delta's conflict checker does, against every commit made since the
snapshot the operation read: a concurrent commit that removed a file this operation read
fails it (`DELTA_CONCURRENT_DELETE_READ`; `…_DELETE_DELETE` for a file both removed), files
added by a commit that read the table (any added file under `Serializable` isolation) where
this operation's condition may match them fail it (`DELTA_CONCURRENT_APPEND`), and metadata
or protocol changes fail it. A blind append under the default `WriteSerializable` isolation
does not: its rows stay, untouched, as on Databricks. The commit itself goes through delta-rs'
transaction on the newest version; a commit that lands in between is checked the same way.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from kiln.driver.delta.conflicts import (
    ConcurrentAppendException,
    ConcurrentDeleteDeleteException,
    ConcurrentDeleteReadException,
    MetadataChangedException,
    ProtocolChangedException,
)
from kiln.driver.delta.dml_plan import PlannedFile
from kiln.driver.delta.files import DataFile, WrittenFile, _filesystem, data_file, open_table
from kiln.driver.delta.pruning import may_match

__all__ = [
    "KILN_OPERATION",
    "Commit",
    "Snapshot",
    "check_commits",
    "commit_rewrite",
    "parse_commit",
    "read_snapshot",
]

# The commit info key that names Kiln's operation (delta-rs records its own as `WRITE`).
KILN_OPERATION = "kiln.operation"
COMMIT_RETRIES = 20
# Operations that add files without reading the table.
_APPENDS = {"WRITE", "CREATE TABLE", "STREAMING UPDATE", "CREATE OR REPLACE TABLE"}


@dataclass
class Snapshot:
    """The table version an operation reads, with its files as the log names them."""

    uri: str
    version: int
    table: Any
    partition_columns: list[str]
    files: list[PlannedFile]

    @property
    def serializable(self) -> bool:
        """Whether the table asks for Serializable isolation (WriteSerializable otherwise)."""
        config = self.table.metadata().configuration or {}
        return str(config.get("delta.isolationLevel", "")).lower() == "serializable"


def read_snapshot(table: Any) -> Snapshot:
    """The snapshot of an opened delta-rs table."""
    import pyarrow as pa

    uri = str(table.table_uri)
    partition_columns = list(table.metadata().partition_columns)
    files = []
    for a in pa.table(table.get_add_actions(flatten=False)).to_pylist():
        files.append(PlannedFile(a["path"], data_file(uri, a)))
    return Snapshot(uri, int(table.version()), table, partition_columns, files)


@dataclass
class Commit:
    """What one concurrent commit did, as far as conflicts go."""

    version: int
    operation: str = ""
    blind_append: bool = False
    added: list[DataFile] = field(default_factory=list)
    removed: set[str] = field(default_factory=set)
    metadata: bool = False
    protocol: bool = False


def parse_commit(version: int, text: str) -> Commit:
    """A commit file's actions."""
    commit = Commit(version)
    info: dict[str, Any] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        action = json.loads(line)
        if "commitInfo" in action:
            info = action["commitInfo"] or {}
        elif "add" in action and action["add"].get("dataChange", True):
            commit.added.append(_added(action["add"]))
        elif "remove" in action and action["remove"].get("dataChange", True):
            commit.removed.add(str(action["remove"]["path"]))
        elif "metaData" in action:
            commit.metadata = True
        elif "protocol" in action:
            commit.protocol = True
    commit.operation = str(info.get(KILN_OPERATION) or info.get("operation") or "")
    blind = info.get("isBlindAppend")
    if blind is None:  # delta-rs leaves it out: an append that removed nothing read nothing
        blind = not commit.removed and commit.operation.upper() in _APPENDS
    commit.blind_append = bool(blind)
    return commit


def _added(add: dict[str, Any]) -> DataFile:
    stats = json.loads(add.get("stats") or "{}")
    return DataFile(
        uri=str(add["path"]),
        size=int(add.get("size") or 0),
        partition_values=dict(add.get("partitionValues") or {}),
        num_records=stats.get("numRecords"),
        min_values=dict(stats.get("minValues") or {}),
        max_values=dict(stats.get("maxValues") or {}),
        null_counts=dict(stats.get("nullCount") or {}),
    )


def check_commits(
    uri: str,
    commits: Sequence[Commit],
    *,
    read: set[str],
    removed: set[str],
    filters: Sequence[Any] | None,
    partition_columns: Sequence[str],
    serializable: bool,
) -> None:
    """Raise the Databricks exception for the first commit this operation conflicts with.

    `read`: log paths of the files the operation read; `removed`: those it removes;
    `filters`: what its condition says about the rows it reads (None: the whole table)."""
    for commit in commits:
        where = f"Conflicting commit: version {commit.version} ({commit.operation or 'unknown'})."
        if commit.protocol:
            raise ProtocolChangedException(uri, where)
        if commit.metadata:
            raise MetadataChangedException(uri, where)
        if not (commit.blind_append and not serializable):
            for data_file in commit.added:
                if filters is None or all(
                    may_match(data_file, flt, partition_columns) for flt in filters
                ):
                    raise ConcurrentAppendException(uri, f"{where}\nFile: {data_file.uri}")
        # As Delta checks: a file this operation read, then one it only removes.
        for paths, kind in (
            (commit.removed & read, ConcurrentDeleteReadException),
            (commit.removed & removed, ConcurrentDeleteDeleteException),
        ):
            if paths:
                raise kind(uri, f"{where}\nFile: {sorted(paths)[0]}")


def _read_commit(uri: str, version: int) -> Commit:
    filesystem, base = _filesystem(uri)
    with filesystem.open_input_stream(f"{base.rstrip('/')}/_delta_log/{version:020d}.json") as f:
        return parse_commit(version, f.read().decode())


def commit_rewrite(
    snapshot: Snapshot,
    removed: Sequence[PlannedFile],
    added: Sequence[WrittenFile],
    *,
    operation: str,
    parameters: dict[str, Any],
    metrics: dict[str, Any],
    read: Sequence[PlannedFile],
    filters: Sequence[Any] | None,
) -> int | None:
    """Commit the rewrite (nothing when it changes nothing); the new version."""
    from deltalake import DeltaTable
    from deltalake.exceptions import CommitFailedError
    from deltalake.transaction import AddAction, CommitProperties, RemoveAction

    if not removed and not added:
        return None
    now = int(time.time() * 1000)
    actions: list[AddAction | RemoveAction] = [
        # delta-rs encodes the path it is given, as it does an add action's.
        RemoveAction(unquote(f.path), True, now, f.data.size, _texts(f.data.partition_values))
        for f in removed
    ]
    actions += [
        AddAction(f.path, f.size, f.partition_values, f.modification_time, True, f.stats)
        for f in added
    ]
    properties = CommitProperties(
        custom_metadata={
            KILN_OPERATION: operation,
            "operationParameters": {k: _text(v) for k, v in parameters.items()},
            "operationMetrics": {k: str(v) for k, v in metrics.items()},
            "isBlindAppend": False,
            "readVersion": snapshot.version,
            "isolationLevel": "Serializable" if snapshot.serializable else "WriteSerializable",
        },
        # Kiln checks conflicts itself (below); delta-rs must not retry past them.
        max_commit_retries=0,
    )
    read_paths = {f.path for f in read}
    removed_paths = {f.path for f in removed}
    checked = snapshot.version
    for _ in range(COMMIT_RETRIES):
        table = DeltaTable(snapshot.uri)
        latest = int(table.version())
        commits = [_read_commit(snapshot.uri, v) for v in range(checked + 1, latest + 1)]
        check_commits(
            snapshot.uri,
            commits,
            read=read_paths,
            removed=removed_paths,
            filters=filters,
            partition_columns=snapshot.partition_columns,
            serializable=snapshot.serializable,
        )
        checked = latest
        try:
            table.create_write_transaction(
                actions,
                "append",
                table.schema(),
                partition_by=snapshot.partition_columns or None,
                commit_properties=properties,
            )
            return latest + 1
        except CommitFailedError:
            # Another commit took the next version first: check it too, then try again.
            time.sleep(0.02)
    raise ConcurrentDeleteReadException(snapshot.uri, "Too many concurrent commits.")


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _texts(values: dict[str, Any]) -> dict[str, str | None]:
    from kiln.driver.delta.files import _partition_text

    return {k: _partition_text(v) for k, v in values.items()}


def open_snapshot(uri: str) -> Snapshot:
    """The newest snapshot of the table at `uri`."""
    return read_snapshot(open_table(uri))
