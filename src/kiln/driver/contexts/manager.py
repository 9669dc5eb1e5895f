"""The driver's registry of execution contexts and the control-endpoint routes over it.

Contexts live here, in the driver runtime, so they outlive the control plane: after a
`kill -9` of `kiln up` the next server finds them through the same routes. A warm spare REPL
per access mode (Python imported, attached to Spark, a query run) is kept ready, so a new
context answers its first command in well under a second; a context restarting its Python
gets a fresh process instead, since it usually follows a change of installed packages.

The control plane has checked the caller, the cluster and the input; the driver checks only
what it alone knows: that a context or command exists and belongs to the caller.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import threading
from collections.abc import Callable
from itertools import count
from pathlib import Path
from typing import Any, Protocol

from kiln.driver.contexts.context import Command, Context, ContextOwner
from kiln.driver.contexts.process import ReplProcess
from kiln.driver.control import ControlServer, HttpError
from kiln.driver.protocol import (
    MAX_CONTEXTS,
    PATH_COMMAND_CANCEL,
    PATH_COMMAND_EXECUTE,
    PATH_COMMAND_STATUS,
    PATH_CONTEXT_CREATE,
    PATH_CONTEXT_DESTROY,
    PATH_CONTEXT_LIST,
    PATH_CONTEXT_STATUS,
)
from kiln.driver.repl.outputs import OutputLimits

__all__ = ["ContextManager", "SparkHost"]

log = logging.getLogger("kiln.driver.contexts")

MODES = ("classic", "connect")
LANGUAGES = ("python", "sql")
# Long-polls are bounded so that a client's request never waits on us for long.
MAX_WAIT_MS = 5000


class SparkHost(Protocol):
    """What the manager needs of the driver runtime."""

    def spark_info(self, mode: str) -> dict[str, Any]:
        """How a REPL reaches Spark in `mode` (gateway port and secret, or a Connect URL)."""
        ...

    def cancel_job_tag(self, tag: str) -> None:
        """Cancel every running job carrying `tag`."""
        ...

    def touch(self) -> None:
        """Record activity (idle time for autotermination restarts)."""
        ...


def _text(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise HttpError(400, "INVALID_PARAMETER_VALUE", f"{key} is required")
    return value


def _user(body: dict[str, Any]) -> int:
    try:
        return int(body["user_id"])
    except (KeyError, TypeError, ValueError):
        raise HttpError(400, "INVALID_PARAMETER_VALUE", "user_id is required") from None


def _since(query: dict[str, Any]) -> int | None:
    """`since_version`: answer once the command's partial outputs pass it (web streams)."""
    try:
        return int(query["since_version"]) if query.get("since_version") not in (None, "") else None
    except (TypeError, ValueError) as exc:
        raise HttpError(400, "INVALID_PARAMETER_VALUE", "since_version must be an integer") from exc


def _wait_seconds(body: dict[str, Any]) -> float:
    try:
        ms = int(body.get("wait_ms") or 0)
    except (TypeError, ValueError):
        ms = 0
    return max(0, min(ms, MAX_WAIT_MS)) / 1000


class ContextManager:
    """Every execution context of one driver, and their spare REPLs."""

    def __init__(
        self,
        cluster_id: str,
        host: SparkHost,
        root: Path,
        *,
        python: str | None = None,
        limits: OutputLimits | None = None,
    ) -> None:
        self.cluster_id = cluster_id
        self.host = host
        self.root = root
        self.python = python or os.environ.get("PYSPARK_PYTHON") or sys.executable
        self.limits = limits or OutputLimits()
        self.contexts: dict[str, Context] = {}
        self._spares: dict[str, ReplProcess] = {}
        self._lock = threading.Lock()
        self._numbers = count(1)
        self._stopped = False

    def register(self, control: ControlServer) -> None:
        """Serve the context and command routes on the control endpoint."""
        control.route("POST", PATH_CONTEXT_CREATE, lambda body, query: self.create(body))
        control.route("GET", PATH_CONTEXT_STATUS, lambda body, query: self.context_status(query))
        control.route("POST", PATH_CONTEXT_DESTROY, lambda body, query: self.destroy(body))
        control.route("GET", PATH_CONTEXT_LIST, lambda body, query: self.list())
        control.route("POST", PATH_COMMAND_EXECUTE, lambda body, query: self.execute(body))
        control.route("GET", PATH_COMMAND_STATUS, lambda body, query: self.command_status(query))
        control.route("POST", PATH_COMMAND_CANCEL, lambda body, query: self.cancel(body))

    # -- processes ---------------------------------------------------------------------------

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        for key in ("PYSPARK_GATEWAY_PORT", "PYSPARK_GATEWAY_SECRET", "PYSPARK_DRIVER_PYTHON"):
            env.pop(key, None)
        env.update(
            PYTHONUNBUFFERED="1",
            PYSPARK_PYTHON=self.python,
            MPLBACKEND="module://kiln.driver.repl.mpl_backend",
        )
        return env

    def _spawn(self, mode: str) -> ReplProcess:
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        init = {
            "mode": mode,
            "cluster_id": self.cluster_id,
            "spark": self.host.spark_info(mode),
            "limits": self.limits.to_json(),
        }
        log_path = self.root / "logs" / f"repl-{next(self._numbers)}.log"
        return ReplProcess(self.python, self._env(), self.root, log_path, init)

    def warm(self, mode: str) -> None:
        """Have a spare REPL of `mode` on its way (in the background)."""
        if mode not in MODES:
            return

        def spawn() -> None:
            with self._lock:
                if self._stopped or mode in self._spares:
                    return
            # Outside the lock: the first Spark Connect context starts the Connect service.
            try:
                spare = self._spawn(mode)
            except Exception:
                log.exception("starting a spare %s REPL failed", mode)
                return
            with self._lock:
                keep = not self._stopped and mode not in self._spares
                if keep:
                    self._spares[mode] = spare
            if not keep:
                spare.kill()

        threading.Thread(target=spawn, name=f"kiln-spare-{mode}", daemon=True).start()

    def _take(self, mode: str, first: bool) -> ReplProcess:
        if not first:
            return self._spawn(mode)
        with self._lock:
            spare = self._spares.pop(mode, None)
        if spare is None or not spare.alive():
            if spare is not None:
                spare.kill()
            spare = self._spawn(mode)
        self.warm(mode)
        return spare

    # -- routes ------------------------------------------------------------------------------

    def _context(self, context_id: object, user_id: int) -> Context:
        context = self.contexts.get(str(context_id)) if context_id else None
        if context is None:
            raise HttpError(
                404,
                "RESOURCE_DOES_NOT_EXIST",
                f"Execution context {context_id} does not exist on cluster {self.cluster_id}.",
            )
        if context.owner.user_id != user_id:
            raise HttpError(
                403,
                "PERMISSION_DENIED",
                f"Execution context {context_id} belongs to another user.",
            )
        return context

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        """A new context, started from a spare REPL; answered once it runs (or Pending)."""
        context_id = _text(body, "context_id")
        mode = _text(body, "mode")
        language = _text(body, "language")
        if mode not in MODES:
            raise HttpError(400, "INVALID_PARAMETER_VALUE", f"unknown access mode {mode!r}")
        if language not in LANGUAGES:
            raise HttpError(400, "INVALID_PARAMETER_VALUE", f"unsupported language {language!r}")
        owner = ContextOwner(_user(body), str(body.get("user_name") or ""))
        cwd = self.root / context_id
        tag = f"kiln-context-{context_id}"
        token = str(body.get("token") or "")
        api_url = str(body.get("api_url") or "")
        assignment = {
            "context_id": context_id,
            "user_name": owner.user_name,
            "token": token,
            "api_url": api_url,
            "dbfs_root": body.get("dbfs_root"),
            "cwd": str(cwd),
            "tag": tag,
            "env": {
                "DATABRICKS_HOST": api_url,
                "DATABRICKS_TOKEN": token,
                # `mlflow` in a context tracks to Kiln, as notebooks in Databricks do.
                "MLFLOW_TRACKING_URI": "databricks",
                "KILN_CONTEXT_ID": context_id,
            },
        }
        with self._lock:
            if self._stopped:
                raise HttpError(503, "TEMPORARILY_UNAVAILABLE", "The driver is stopping.")
            if context_id in self.contexts:
                raise HttpError(409, "RESOURCE_ALREADY_EXISTS", f"Context {context_id} exists.")
            if len(self.contexts) >= MAX_CONTEXTS:
                raise HttpError(
                    429,
                    "REQUEST_LIMIT_EXCEEDED",
                    "Too many execution contexts are open right now "
                    f"(the limit is {MAX_CONTEXTS}). Destroy one and try again.",
                )
            cwd.mkdir(parents=True, exist_ok=True, mode=0o700)
            context = Context(
                context_id,
                owner,
                language,
                mode,
                str(body.get("token_id") or ""),
                assignment,
                lambda first: self._take(mode, first),
                self._cancel_jobs(mode),
                self.host.touch,
            )
            self.contexts[context_id] = context
        context.wait_started(_wait_seconds(body))
        return context.view()

    def _cancel_jobs(self, mode: str) -> Callable[[str, str], None]:
        from kiln.driver.repl.spark import connect_job_tag

        def cancel(tag: str, session_id: str) -> None:
            if mode == "connect":
                if session_id:
                    self.host.cancel_job_tag(connect_job_tag(session_id, tag))
            else:
                self.host.cancel_job_tag(tag)

        return cancel

    def context_status(self, query: dict[str, Any]) -> dict[str, Any]:
        """One context's status (a short long-poll while it is Pending)."""
        context = self._context(query.get("context_id"), _user(query))
        context.wait_started(_wait_seconds(query))
        return context.view()

    def destroy(self, body: dict[str, Any]) -> dict[str, Any]:
        """Stop a context and forget it; its view (with the token to revoke) is the answer."""
        context = self._context(body.get("context_id"), _user(body))
        with self._lock:
            self.contexts.pop(context.id, None)
        context.destroy()
        shutil.rmtree(self.root / context.id, ignore_errors=True)
        return context.view()

    def list(self) -> dict[str, Any]:
        """Every context (the control plane's bookkeeping of tokens)."""
        with self._lock:
            contexts = list(self.contexts.values())
        return {"contexts": [c.view() for c in contexts]}

    def execute(self, body: dict[str, Any]) -> dict[str, Any]:
        """Queue a command in a context; its id and status."""
        context = self._context(body.get("context_id"), _user(body))
        language = str(body.get("language") or context.language)
        if language not in LANGUAGES:
            raise HttpError(400, "INVALID_PARAMETER_VALUE", f"unsupported language {language!r}")
        if context.error is not None:
            raise HttpError(400, "INVALID_STATE", context.error)
        if body.get("api_url"):
            context.set_api_url(str(body["api_url"]))
        command = context.submit(str(body.get("command") or ""), language)
        return context.wait(command, _wait_seconds(body))

    def _command(self, context: Context, command_id: object) -> Command:
        command = context.commands.get(str(command_id)) if command_id else None
        if command is None:
            raise HttpError(
                404,
                "RESOURCE_DOES_NOT_EXIST",
                f"Command {command_id} does not exist in execution context {context.id}.",
            )
        return command

    def command_status(self, query: dict[str, Any]) -> dict[str, Any]:
        """A command's status and, once done, its outputs (a short long-poll until then)."""
        context = self._context(query.get("context_id"), _user(query))
        command = self._command(context, query.get("command_id"))
        return context.wait(command, _wait_seconds(query), _since(query))

    def cancel(self, body: dict[str, Any]) -> dict[str, Any]:
        """Cancel a command (no effect on a finished one)."""
        context = self._context(body.get("context_id"), _user(body))
        context.cancel(self._command(context, body.get("command_id")))
        return {}

    # -- the driver ------------------------------------------------------------------------

    def busy(self) -> bool:
        """Whether any context has a command queued or running."""
        with self._lock:
            contexts = list(self.contexts.values())
        return any(c.busy() for c in contexts)

    def stop(self) -> None:
        """Stop every context and spare (the driver is stopping)."""
        with self._lock:
            self._stopped = True
            contexts = list(self.contexts.values())
            spares = list(self._spares.values())
            self._spares.clear()
        for spare in spares:
            spare.kill()
        for context in contexts:
            context.destroy(grace=0.0)
