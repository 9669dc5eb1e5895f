"""Fetching a cluster's init scripts from Kiln's own stores (workspace files, DBFS, volumes),
read as the cluster's owner."""

from __future__ import annotations

import asyncio

from sqlalchemy.ext.asyncio import AsyncSession

from kiln.compute.backends.base import InitScriptResult, ResolvedInitScript
from kiln.compute.spec import InitScript
from kiln.dbfs import DbfsStore
from kiln.errors import KilnError
from kiln.workspace import Actor, ExportFormat, ObjectType, export_object, get_status

__all__ = ["MAX_SCRIPT_BYTES", "fetch_init_scripts"]

MAX_SCRIPT_BYTES = 10 * 1024 * 1024


def _read_store(store: DbfsStore, path: str) -> bytes:
    entry = store.require(path)
    if entry.is_dir:
        raise FileNotFoundError(f"{path} is a directory")
    if entry.size > MAX_SCRIPT_BYTES:
        raise ValueError(f"{path} is larger than {MAX_SCRIPT_BYTES} bytes")
    with store.open_read(path) as f:
        return f.read()


async def _fetch(
    session: AsyncSession, store: DbfsStore, owner: Actor, script: InitScript
) -> bytes:
    if script.kind == "workspace":
        row = await get_status(session, owner, script.path)
        if row.object_type != ObjectType.FILE:
            raise ValueError(f"{script.path} is a {row.object_type.lower()}, not a file")
        exported = await export_object(
            session, owner, script.path, ExportFormat.AUTO, max_size=MAX_SCRIPT_BYTES
        )
        return exported.content
    return await asyncio.to_thread(_read_store, store, script.path)


async def fetch_init_scripts(
    session: AsyncSession, store: DbfsStore, owner: Actor, scripts: tuple[InitScript, ...]
) -> tuple[list[ResolvedInitScript], list[InitScriptResult]]:
    """The scripts' contents, or (on the first that cannot be read) the per-script results
    with FAILED_FETCH for it and SKIPPED after it."""
    resolved: list[ResolvedInitScript] = []
    for i, script in enumerate(scripts):
        try:
            content = await _fetch(session, store, owner, script)
        except (KilnError, OSError, ValueError) as exc:
            message = exc.message if isinstance(exc, KilnError) else str(exc)
            results = [InitScriptResult(r.script, "SKIPPED", 0) for r in resolved]
            results.append(
                InitScriptResult(script, "FAILED_FETCH", 0, f"Cannot read {script.path}: {message}")
            )
            results.extend(InitScriptResult(s, "SKIPPED", 0) for s in scripts[i + 1 :])
            return [], results
        resolved.append(ResolvedInitScript(script, content))
    return resolved, []
