"""spark_python_task and python_wheel_task: one command in a fresh execution context on the
task's cluster.

The Python file is read by the control plane (from the workspace, as the run's user, or from
DBFS) and sent as the command, run as `__main__` with `sys.argv` set from the parameters; a
wheel task calls its package's entry point (the `entry_points` metadata, else
`package.entry_point()`). `dbutils.jobs.taskValues` works as in a notebook. Its stdout and
stderr are the task's logs.

The context and the command are recorded before they are relied on, and both live in the
cluster's driver, so an attempt that was running when the control plane stopped is found
again and waited for: resumable, never run twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from kiln.errors import InvalidParameterValue, KilnError
from kiln.jobs.retry import retry_when_locked
from kiln.jobs.runners.base import TaskContext, TaskOutcome
from kiln.jobs.states import ResultState

if TYPE_CHECKING:
    from kiln.compute.service import Compute

__all__ = ["PythonTaskRunner", "outcome_of", "python_file_code", "wheel_code"]

STATUS_WAIT_MS = 5000
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")

_MAIN = """\
import sys as _kiln_sys
_kiln_sys.argv = {argv!r}
{bind}
_kiln_ns = {{"__name__": "__main__", "__file__": {filename!r}, "__builtins__": __builtins__}}
for _kiln_name in ("spark", "sc", "dbutils", "display", "displayHTML"):
    if _kiln_name in globals():
        _kiln_ns[_kiln_name] = globals()[_kiln_name]
try:
    exec(compile({source!r}, {filename!r}, "exec"), _kiln_ns)
except SystemExit as _kiln_exit:
    if _kiln_exit.code not in (None, 0):
        raise RuntimeError(f"The script exited with status {{_kiln_exit.code}}.") from None
"""

_WHEEL = """\
import importlib as _kiln_importlib
import importlib.metadata as _kiln_metadata
import re as _kiln_re
import sys as _kiln_sys
_kiln_sys.argv = {argv!r}
{bind}
def _kiln_norm(name):
    return _kiln_re.sub(r"[-_.]+", "-", name or "").lower()
_kiln_found = [
    ep for ep in _kiln_metadata.entry_points(name={entry_point!r})
    if ep.dist is None or _kiln_norm(ep.dist.name) == _kiln_norm({package!r})
]
if _kiln_found:
    _kiln_fn = _kiln_found[0].load()
else:
    _kiln_fn = getattr(_kiln_importlib.import_module({module!r}), {entry_point!r})
try:
    _kiln_fn()
except SystemExit as _kiln_exit:
    if _kiln_exit.code not in (None, 0):
        raise RuntimeError(f"The entry point exited with status {{_kiln_exit.code}}.") from None
"""


def _bind(ctx: TaskContext, path: str) -> str:
    from kiln.driver.dbutils import RunBinding
    from kiln.driver.notebook.commands import bind_code

    binding = RunBinding(
        notebook_path=path,
        run_id=str(ctx.task_run_id),
        parameters={},
        task_values=ctx.task_values,
        task_key=ctx.task_key,
    )
    return bind_code(binding)


def python_file_code(ctx: TaskContext, source: str, filename: str) -> str:
    """The command that runs a Python file as `__main__` with the task's parameters."""
    params = list(ctx.spec["spark_python_task"].get("parameters") or [])
    return _MAIN.format(
        argv=[filename, *params],
        bind=_bind(ctx, filename),
        filename=filename,
        source=source,
    )


def wheel_code(ctx: TaskContext) -> str:
    """The command that calls a wheel's entry point with the task's parameters."""
    body = ctx.spec["python_wheel_task"]
    package = body["package_name"]
    if body.get("named_parameters"):
        args = [f"--{k}={v}" for k, v in body["named_parameters"].items()]
    else:
        args = list(body.get("parameters") or [])
    return _WHEEL.format(
        argv=[package, *args],
        bind=_bind(ctx, f"wheel:{package}"),
        entry_point=body["entry_point"],
        package=package,
        module=package.replace("-", "_"),
    )


def _text(value: Any) -> str:
    if isinstance(value, list):
        return "".join(str(v) for v in value)
    return str(value)


def outcome_of(info: Any) -> TaskOutcome:
    """The task's outcome from its command's status and outputs."""
    from kiln.driver.dbutils import EXIT_MIME, TASK_VALUE_MIME

    logs: list[str] = []
    values: dict[str, Any] = {}
    exit_value: str | None = None
    error: dict[str, Any] | None = None
    for output in info.outputs:
        kind = output.get("output_type")
        data = output.get("data") or {}
        if kind == "stream":
            logs.append(_text(output.get("text", "")))
        elif kind == "error":
            error = output
        elif isinstance(data, dict) and TASK_VALUE_MIME in data:
            payload = data[TASK_VALUE_MIME]
            values[str(payload.get("key"))] = payload.get("value")
        elif isinstance(data, dict) and EXIT_MIME in data:
            exit_value = str((data[EXIT_MIME] or {}).get("value", ""))
        elif isinstance(data, dict) and "text/plain" in data:
            logs.append(_text(data["text/plain"]) + "\n")
    text = "".join(logs)
    if info.status == "Cancelled":
        return TaskOutcome(
            ResultState.CANCELED, "The command was cancelled.", logs=text, retryable=False
        )
    if info.status == "Error":
        message = info.error or "The execution context stopped while running the task."
        return TaskOutcome(
            ResultState.FAILED, message, logs=text, error=message, task_values=values
        )
    if error is not None:
        message = f"{error.get('ename', 'Error')}: {error.get('evalue', '')}"
        trace = "\n".join(_ANSI.sub("", _text(t)) for t in error.get("traceback") or [])
        return TaskOutcome(
            ResultState.FAILED,
            message,
            logs=text,
            error=message,
            error_trace=trace or None,
            task_values=values,
        )
    return TaskOutcome(
        ResultState.SUCCESS, "", logs=text, exit_value=exit_value, task_values=values
    )


class PythonTaskRunner:
    """Runs spark_python_task and python_wheel_task."""

    def __init__(self, compute: Compute, starts: asyncio.Semaphore | None = None) -> None:
        self.compute = compute
        self.starts = starts or asyncio.Semaphore(3)

    def resumable(self, checkpoint: Mapping[str, Any]) -> bool:
        """Resumable once its context and command are recorded."""
        return bool(checkpoint.get("context_id") and checkpoint.get("command_id"))

    async def _source(self, ctx: TaskContext) -> tuple[str, str]:
        path = ctx.spec["spark_python_task"]["python_file"]
        if path.startswith("dbfs:/"):
            from kiln.dbfs.paths import dbfs_path

            clean = dbfs_path(path)
            try:
                data = await asyncio.to_thread(_read_dbfs, self.compute, clean)
            except FileNotFoundError:
                raise InvalidParameterValue(f"python_file {path} does not exist.") from None
            return data.decode("utf-8"), path
        from kiln.workspace import ExportFormat, export_object

        workspace_path = path.removeprefix("/Workspace") if path.startswith("/Workspace/") else path
        async with self.compute.db.session() as session:
            exported = await export_object(
                session, ctx.principal, workspace_path, ExportFormat.AUTO, max_size=None
            )
        return exported.content.decode("utf-8"), path

    async def run(self, ctx: TaskContext) -> TaskOutcome:
        """Run (or find again) the task's command and wait for its end."""
        from kiln.compute.execution import execute_command, start_context, stop_context

        assert ctx.cluster_id is not None
        cluster_id = ctx.cluster_id
        if ctx.resume:
            context_id = str(ctx.checkpoint["context_id"])
            command_id = str(ctx.checkpoint["command_id"])
        else:
            if "spark_python_task" in ctx.spec:
                source, filename = await self._source(ctx)
                code = python_file_code(ctx, source, filename)
            else:
                code = wheel_code(ctx)
            async with self.starts:
                # Nothing exists yet when the store refuses the context's token: safe to retry.
                context_id = await retry_when_locked(
                    lambda: start_context(self.compute, ctx.principal, cluster_id, "python")
                )
            await ctx.mark_started({"context_id": context_id, "cluster_id": cluster_id})
            async with self.compute.db.session() as session:
                command_id = await execute_command(
                    session, self.compute, ctx.principal, cluster_id, context_id, code, "python"
                )
            await ctx.record({"command_id": command_id})
        try:
            info = await self._wait(ctx, cluster_id, context_id, command_id)
        except asyncio.CancelledError:
            if not ctx.stopping():
                await asyncio.shield(self._cancel(ctx, cluster_id, context_id, command_id))
            raise
        with contextlib.suppress(KilnError):
            await stop_context(self.compute, ctx.principal, cluster_id, context_id)
        return outcome_of(info)

    async def _wait(
        self, ctx: TaskContext, cluster_id: str, context_id: str, command_id: str
    ) -> Any:
        from kiln.compute.execution import command_status

        while True:
            async with self.compute.db.session() as session:
                info = await command_status(
                    session,
                    self.compute,
                    ctx.principal,
                    cluster_id,
                    context_id,
                    command_id,
                    STATUS_WAIT_MS,
                )
            if info.done:
                return info

    async def _cancel(
        self, ctx: TaskContext, cluster_id: str, context_id: str, command_id: str
    ) -> None:
        from kiln.compute.execution import cancel_command, stop_context

        with contextlib.suppress(KilnError):
            async with self.compute.db.session() as session:
                await cancel_command(
                    session, self.compute, ctx.principal, cluster_id, context_id, command_id
                )
        with contextlib.suppress(KilnError):
            await stop_context(self.compute, ctx.principal, cluster_id, context_id)


def _read_dbfs(compute: Compute, path: str) -> bytes:
    with compute.dbfs.open_read(path) as handle:
        return handle.read()
