"""What a notebook run needs from the rest of the control plane: notebooks from the workspace
(read as the run's user, through the Workspace API's export) and one execution context on the
cluster (through the execution service), joined into the runner's `NotebookHost`."""

from __future__ import annotations

from collections import OrderedDict
from typing import Protocol

from kiln.driver.notebook import CellOutcome, NotebookError
from kiln.errors import InvalidParameterValue, KilnError, ResourceDoesNotExist
from kiln.principal import Principal
from kiln.store import Database
from kiln.workspace import ExportFormat, Language, ObjectType, export_object, get_status
from kiln.workspace.notebook_formats import has_source_header, parse_source, to_jupyter

__all__ = ["ContextGateway", "NotebookSources", "RunHost", "check_notebook", "fetch_notebook"]

# Snapshots kept at once: one per for_each being run is plenty.
MAX_SNAPSHOTS = 64


class ContextGateway(Protocol):
    """Execution contexts as a notebook run uses them."""

    async def create(self, principal: Principal, cluster_id: str) -> str:
        """A fresh Python context on a RUNNING cluster, acting as `principal`; its id."""
        ...

    async def execute(
        self, principal: Principal, cluster_id: str, context_id: str, code: str
    ) -> CellOutcome:
        """Run code and wait for its end; cancelling the wait cancels the command."""
        ...

    async def destroy(self, principal: Principal, cluster_id: str, context_id: str) -> None:
        """Destroy the context (nothing if it is already gone)."""
        ...

    async def alive(self, principal: Principal, cluster_id: str, context_id: str) -> bool:
        """Whether the context still runs and takes commands."""
        ...


async def fetch_notebook(db: Database, principal: Principal, path: str) -> bytes:
    """The notebook at a workspace path as nbformat JSON, read as `principal`.

    Notebooks come through the Workspace API's JUPYTER export; a workspace file is a notebook
    too when it is an `.ipynb`, or source with a `Databricks notebook source` header.
    """
    async with db.session() as session:
        try:
            row = await get_status(session, principal, path)
            if row.object_type == ObjectType.NOTEBOOK:
                exported = await export_object(
                    session, principal, path, ExportFormat.JUPYTER, max_size=None
                )
                return exported.content
            if row.object_type == ObjectType.FILE:
                exported = await export_object(
                    session, principal, path, ExportFormat.AUTO, max_size=None
                )
                return _file_notebook(path, exported.content)
        except ResourceDoesNotExist:
            raise NotebookError(f"Notebook not found: {path}") from None
        except KilnError as exc:
            raise NotebookError(f"Cannot read notebook {path}: {exc.message}") from None
    raise NotebookError(f"{path} is a folder, not a notebook.")


def _file_notebook(path: str, content: bytes) -> bytes:
    if path.lower().endswith(".ipynb"):
        return content
    language = Language.from_extension(path)
    text = content.decode("utf-8", errors="replace")
    if language is not None and has_source_header(text, language):
        name = path.rsplit("/", 1)[-1]
        return to_jupyter(parse_source(text, language), name).encode()
    raise NotebookError(f"{path} is a file, not a notebook.")


async def check_notebook(db: Database, principal: Principal, path: str) -> None:
    """Refuse a path that names no notebook the user can read, before a run starts."""
    async with db.session() as session:
        try:
            row = await get_status(session, principal, path)
        except ResourceDoesNotExist:
            raise ResourceDoesNotExist(f"Notebook not found: {path}") from None
    if row.object_type == ObjectType.DIRECTORY:
        raise InvalidParameterValue(f"{path} is a folder, not a notebook.")


class NotebookSources:
    """Notebooks read once for a group of runs that share a snapshot key (the iterations of
    one for_each): they run the notebooks as they were when the first of them read them."""

    def __init__(self, max_snapshots: int = MAX_SNAPSHOTS) -> None:
        self.max_snapshots = max_snapshots
        self._snapshots: OrderedDict[tuple[str, int], dict[str, bytes]] = OrderedDict()

    def get(self, key: str, user_id: int, path: str) -> bytes | None:
        """The notebook at `path` as the snapshot holds it, if it was read."""
        found = self._snapshots.get((key, user_id))
        return found.get(path) if found is not None else None

    def put(self, key: str, user_id: int, path: str, content: bytes) -> None:
        """Keep a notebook in its snapshot (the least recently started snapshot goes first)."""
        snapshot = self._snapshots.get((key, user_id))
        if snapshot is None:
            snapshot = self._snapshots[(key, user_id)] = {}
            while len(self._snapshots) > self.max_snapshots:
                self._snapshots.popitem(last=False)
        snapshot[path] = content


class RunHost:
    """The runner's host for one run: its user's workspace, its context on its cluster."""

    def __init__(
        self,
        db: Database,
        gateway: ContextGateway,
        principal: Principal,
        cluster_id: str,
        context_id: str,
        sources: NotebookSources | None = None,
        snapshot: str | None = None,
    ) -> None:
        self.db = db
        self.gateway = gateway
        self.principal = principal
        self.cluster_id = cluster_id
        self.context_id = context_id
        self.sources = sources
        self.snapshot = snapshot

    async def fetch(self, path: str) -> bytes:
        """The notebook at `path` as nbformat JSON (from the run's snapshot when it has one)."""
        if self.sources is None or self.snapshot is None:
            return await fetch_notebook(self.db, self.principal, path)
        content = self.sources.get(self.snapshot, self.principal.user_id, path)
        if content is None:
            content = await fetch_notebook(self.db, self.principal, path)
            self.sources.put(self.snapshot, self.principal.user_id, path, content)
        return content

    async def execute(self, code: str) -> CellOutcome:
        """Run code in the run's context."""
        return await self.gateway.execute(self.principal, self.cluster_id, self.context_id, code)
