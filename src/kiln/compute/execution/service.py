"""Execution contexts and commands (the Command Execution API 1.2): what each route calls.

The control plane checks the caller, the cluster (it must run; a dedicated cluster is its
user's alone) and the input, mints the context's token, and routes every call to the
cluster's driver, which holds the contexts (so they outlive a restart of the control plane).
A command's status long-polls the driver briefly, so a short command's first status is
already its result.

`start_context`, `run_command` and `stop_context` are the same services for callers inside the
control plane (notebook runs): they open their own units of work and wait.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from kiln.compute.execution.access import access_mode, require_attach, require_runnable
from kiln.compute.execution.client import DriverRoute, ExecutionClient
from kiln.compute.execution.results import command_results
from kiln.compute.execution.tokens import (
    mint_context_token,
    revoke_context_token,
    sweep_context_tokens,
)
from kiln.compute.permissions import PermissionLevel, require_level
from kiln.driver.protocol import (
    PATH_COMMAND_CANCEL,
    PATH_COMMAND_EXECUTE,
    PATH_COMMAND_STATUS,
    PATH_CONTEXT_CREATE,
    PATH_CONTEXT_DESTROY,
    PATH_CONTEXT_LIST,
    PATH_CONTEXT_STATUS,
)
from kiln.errors import (
    InvalidParameterValue,
    InvalidState,
    KilnError,
    RequestTooLarge,
    ResourceDoesNotExist,
)
from kiln.identity import Principal
from kiln.store.models import Cluster, ClusterRuntime

if TYPE_CHECKING:
    from kiln.compute.service import Compute

__all__ = [
    "MAX_COMMAND_BYTES",
    "CommandInfo",
    "ContextInfo",
    "cancel_command",
    "command_route",
    "command_status",
    "context_status",
    "create_context",
    "destroy_context",
    "execute_command",
    "execution_client",
    "run_command",
    "start_context",
    "stop_context",
]

# Databricks' limit on a notebook cell's (and a command's) input.
MAX_COMMAND_BYTES = 6 * 1024 * 1024
LANGUAGES = ("python", "sql")
UNSUPPORTED_LANGUAGES = ("scala", "r")
# How long the driver may hold a status request for a command (or a context) to end.
STATUS_WAIT_MS = 1000
CREATE_WAIT_MS = 2000
# Background callers wait in longer slices.
RUN_WAIT_MS = 5000
START_TIMEOUT_SECONDS = 600.0

_clients: weakref.WeakKeyDictionary[Compute, ExecutionClient] = weakref.WeakKeyDictionary()


def execution_client(compute: Compute) -> ExecutionClient:
    """The pooled client of the drivers' execution routes that this server uses."""
    client = _clients.get(compute)
    if client is None:
        client = _clients[compute] = ExecutionClient()
    return client


async def close_execution_client(compute: Compute) -> None:
    """Close the drivers' client of `compute` (its clean stop), if one was made."""
    client = _clients.pop(compute, None)
    if client is not None:
        await client.close()


@dataclass(frozen=True, slots=True)
class ContextInfo:
    """An execution context's id and status (Pending, Running, Error)."""

    id: str
    status: str
    error: str | None = None

    @classmethod
    def of(cls, view: dict[str, Any]) -> ContextInfo:
        """Read the driver's view."""
        return cls(str(view["id"]), str(view["status"]), view.get("error"))


@dataclass(frozen=True, slots=True)
class CommandInfo:
    """A command's status and, once it ended, its outputs and its 1.2 result."""

    id: str
    status: str
    outputs: list[dict[str, Any]] = field(default_factory=list)
    results: dict[str, Any] | None = None
    error: str | None = None
    # The driver's count of partial outputs while it runs (`command_status(since=...)`).
    version: int = 0

    @property
    def done(self) -> bool:
        """Whether the command reached a final status."""
        return self.status in ("Finished", "Cancelled", "Error")

    @classmethod
    def of(cls, view: dict[str, Any]) -> CommandInfo:
        """Read the driver's view."""
        return cls(
            id=str(view["id"]),
            status=str(view["status"]),
            outputs=list(view.get("outputs") or []),
            results=command_results(view),
            error=view.get("error"),
            version=int(view.get("version") or 0),
        )


def _required(value: object, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidParameterValue(f"{name} is required.")
    return value


def _language(value: object, default: str | None) -> str | None:
    if value is None or value == "":
        return default
    if not isinstance(value, str):
        raise InvalidParameterValue("language must be a string.")
    language = value.lower()
    if language in LANGUAGES:
        return language
    if language in UNSUPPORTED_LANGUAGES:
        raise InvalidParameterValue(
            f"Language {value} is not supported: Kiln clusters run python and sql commands."
        )
    raise InvalidParameterValue(
        f"Unknown language {value!r}: use python or sql (scala and r are not supported)."
    )


def _api_url(compute: Compute) -> str:
    host = compute.settings.host
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{compute.settings.port}"


def _dbfs_root(compute: Compute) -> str | None:
    url = compute.settings.dbfs_root_url
    if url.startswith("file://"):
        url = url[len("file://") :]
    if "://" in url:
        return None
    return os.path.abspath(url)


async def _route(
    session: AsyncSession, compute: Compute, principal: Principal, cluster_id: object
) -> tuple[DriverRoute, dict[str, Any]]:
    cid = _required(cluster_id, "clusterId")
    # One query for both rows: this runs on every command and status call.
    found = (
        await session.execute(
            select(Cluster, ClusterRuntime)
            .outerjoin(ClusterRuntime, ClusterRuntime.cluster_id == Cluster.cluster_id)
            .where(Cluster.cluster_id == cid)
        )
    ).first()
    row, runtime = (found[0], found[1]) if found is not None else (None, None)
    if row is None or row.deleted_at is not None:
        raise InvalidParameterValue(f"Cluster {cid} does not exist")
    require_runnable(cid, row.state)
    spec = dict(row.spec or {})
    require_attach(principal, cid, spec)
    await require_level(session, principal, row, PermissionLevel.CAN_ATTACH_TO)
    if runtime is None or not runtime.control_url or not runtime.secret_path:
        raise InvalidState(f"Cluster {cid} is not running: its driver has no control endpoint.")
    route = DriverRoute(cid, runtime.control_url, runtime.secret_path, runtime.spark_app_id or "")
    return route, spec


def new_context_id() -> str:
    """A Databricks-shaped context id: a 19-digit number."""
    return str(10**18 + secrets.randbelow(9 * 10**18))


async def create_context(
    session: AsyncSession,
    compute: Compute,
    principal: Principal,
    cluster_id: object,
    language: object = None,
) -> ContextInfo:
    """A new execution context on a running cluster, acting as `principal`."""
    lang = _language(language, "python")
    route, spec = await _route(session, compute, principal, cluster_id)
    client = execution_client(compute)
    listing = await client.call(route, "GET", PATH_CONTEXT_LIST)
    live = [str(c.get("token_id") or "") for c in listing.get("contexts") or []]
    await sweep_context_tokens(session, route.cluster_id, live)
    context_id = new_context_id()
    token = await mint_context_token(session, principal, route.cluster_id, context_id)
    # Commit before the driver starts the REPL: the REPL may use the token at once, and a
    # write transaction held open while a process starts blocks every other SQLite writer
    # (16 contexts starting together ran past the busy timeout). A token whose context then
    # fails to start is swept with the others that have no live context.
    await session.commit()
    body = {
        "context_id": context_id,
        "language": lang,
        "mode": access_mode(spec),
        "user_id": principal.user_id,
        "user_name": principal.user_name,
        "token": token.value,
        "token_id": token.row.token_id,
        "api_url": _api_url(compute),
        "dbfs_root": _dbfs_root(compute),
        "wait_ms": CREATE_WAIT_MS,
    }
    view = await client.call(
        route, "POST", PATH_CONTEXT_CREATE, body=body, wait=CREATE_WAIT_MS / 1000
    )
    return ContextInfo.of(view)


async def context_status(
    session: AsyncSession,
    compute: Compute,
    principal: Principal,
    cluster_id: object,
    context_id: object,
    wait_ms: int = STATUS_WAIT_MS,
) -> ContextInfo:
    """A context's status (held briefly while it is Pending)."""
    ctx = _required(context_id, "contextId")
    route, _ = await _route(session, compute, principal, cluster_id)
    query = {"context_id": ctx, "user_id": principal.user_id, "wait_ms": wait_ms}
    view = await execution_client(compute).call(
        route, "GET", PATH_CONTEXT_STATUS, query=query, wait=wait_ms / 1000
    )
    return ContextInfo.of(view)


async def destroy_context(
    session: AsyncSession,
    compute: Compute,
    principal: Principal,
    cluster_id: object,
    context_id: object,
) -> None:
    """Stop a context and revoke its token."""
    ctx = _required(context_id, "contextId")
    route, _ = await _route(session, compute, principal, cluster_id)
    view = await execution_client(compute).call(
        route, "POST", PATH_CONTEXT_DESTROY, body={"context_id": ctx, "user_id": principal.user_id}
    )
    await revoke_context_token(session, str(view.get("token_id") or ""))


def _command_body(
    principal: Principal, compute: Compute, context_id: object, command: object, language: object
) -> dict[str, Any]:
    ctx = _required(context_id, "contextId")
    if not isinstance(command, str):
        raise InvalidParameterValue("command is required.")
    size = len(command.encode())
    if size > MAX_COMMAND_BYTES:
        raise RequestTooLarge(
            f"The command is {size} bytes; a command may be at most {MAX_COMMAND_BYTES} bytes "
            "(6 MB)."
        )
    return {
        "context_id": ctx,
        "user_id": principal.user_id,
        "command": command,
        "language": _language(language, None),
        "api_url": _api_url(compute),
    }


async def execute_command(
    session: AsyncSession,
    compute: Compute,
    principal: Principal,
    cluster_id: object,
    context_id: object,
    command: object,
    language: object = None,
) -> str:
    """Queue a command in a context; its id."""
    body = _command_body(principal, compute, context_id, command, language)
    route, _ = await _route(session, compute, principal, cluster_id)
    view = await execution_client(compute).call(route, "POST", PATH_COMMAND_EXECUTE, body=body)
    return str(view["id"])


async def command_status(
    session: AsyncSession,
    compute: Compute,
    principal: Principal,
    cluster_id: object,
    context_id: object,
    command_id: object,
    wait_ms: int = STATUS_WAIT_MS,
    since: int | None = None,
) -> CommandInfo:
    """A command's status and, once it ended, its result (held briefly until then; with
    `since`, also answered once its partial outputs pass that version)."""
    ctx = _required(context_id, "contextId")
    cmd = _required(command_id, "commandId")
    route, _ = await _route(session, compute, principal, cluster_id)
    return await _status_at(compute, route, principal, ctx, cmd, wait_ms, since)


async def _status_at(
    compute: Compute,
    route: DriverRoute,
    principal: Principal,
    context_id: str,
    command_id: str,
    wait_ms: int,
    since: int | None = None,
) -> CommandInfo:
    query: dict[str, Any] = {
        "context_id": context_id,
        "command_id": command_id,
        "user_id": principal.user_id,
        "wait_ms": wait_ms,
    }
    if since is not None:
        query["since_version"] = since
    view = await execution_client(compute).call(
        route, "GET", PATH_COMMAND_STATUS, query=query, wait=wait_ms / 1000
    )
    return CommandInfo.of(view)


async def cancel_command(
    session: AsyncSession,
    compute: Compute,
    principal: Principal,
    cluster_id: object,
    context_id: object,
    command_id: object,
) -> None:
    """Cancel a queued or running command: its Python code and its Spark jobs."""
    ctx = _required(context_id, "contextId")
    cmd = _required(command_id, "commandId")
    route, _ = await _route(session, compute, principal, cluster_id)
    await _cancel_at(compute, route, principal, ctx, cmd)


async def _cancel_at(
    compute: Compute, route: DriverRoute, principal: Principal, context_id: str, command_id: str
) -> None:
    body = {"context_id": context_id, "command_id": command_id, "user_id": principal.user_id}
    await execution_client(compute).call(route, "POST", PATH_COMMAND_CANCEL, body=body)


# -- for callers inside the control plane (notebook runs) ------------------------------------


async def start_context(
    compute: Compute,
    principal: Principal,
    cluster_id: str,
    language: str = "python",
    start_seconds: float = START_TIMEOUT_SECONDS,
) -> str:
    """Create a context and wait until it runs; its id (KilnError if it cannot start)."""
    async with compute.db.session() as session:
        info = await create_context(session, compute, principal, cluster_id, language)
    deadline = asyncio.get_running_loop().time() + start_seconds
    while info.status == "Pending":
        if asyncio.get_running_loop().time() > deadline:
            raise InvalidState(
                f"Execution context {info.id} did not start within {start_seconds:.0f}s."
            )
        async with compute.db.session() as session:
            info = await context_status(
                session, compute, principal, cluster_id, info.id, wait_ms=RUN_WAIT_MS
            )
    if info.status != "Running":
        raise InvalidState(info.error or f"Execution context {info.id} failed to start.")
    return info.id


async def command_route(compute: Compute, principal: Principal, cluster_id: str) -> DriverRoute:
    """Where `principal`'s commands on a cluster go, once the caller and the cluster are
    checked (what `run_command` checks when it is given no route)."""
    async with compute.db.session() as session:
        route, _ = await _route(session, compute, principal, cluster_id)
    return route


async def run_command(
    compute: Compute,
    principal: Principal,
    cluster_id: str,
    context_id: str,
    code: str,
    language: str = "python",
    *,
    route: DriverRoute | None = None,
) -> CommandInfo:
    """Run a command and wait for its end (after a restart of the context's Python it waits for
    the fresh one too). Cancelling this coroutine cancels the command.

    The caller and the cluster are checked once per command, and the driver holds the execute
    call until the command ends (up to a slice): a short command costs one query and one call,
    which is most of what a notebook run of a for_each iteration costs. A caller that checked
    moments ago (`command_route`) passes its route and saves the query.
    """
    body = _command_body(principal, compute, context_id, code, language)
    if route is None:
        route = await command_route(compute, principal, cluster_id)
    client = execution_client(compute)
    body["wait_ms"] = RUN_WAIT_MS
    info = CommandInfo.of(
        await client.call(route, "POST", PATH_COMMAND_EXECUTE, body=body, wait=RUN_WAIT_MS / 1000)
    )
    context = str(body["context_id"])
    try:
        while not info.done:
            info = await _status_at(compute, route, principal, context, info.id, RUN_WAIT_MS)
        return info
    except asyncio.CancelledError:
        await asyncio.shield(_cancel_at(compute, route, principal, context, info.id))
        raise


async def stop_context(
    compute: Compute, principal: Principal, cluster_id: str, context_id: str
) -> None:
    """Destroy a context (nothing if it, or its cluster, is gone already)."""
    try:
        async with compute.db.session() as session:
            await destroy_context(session, compute, principal, cluster_id, context_id)
    except (ResourceDoesNotExist, InvalidState):
        return
    except KilnError as exc:
        if "does not exist" not in exc.message:
            raise
