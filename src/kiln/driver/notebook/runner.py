"""The notebook runner: runs a workspace notebook cell by cell in one execution context.

It runs outside the context, driving it through a `NotebookHost` (one command per cell),
because `%pip` and `dbutils.library.restartPython()` restart the context's Python, which a
runner inside it would not survive. `%md` cells need no context; `%run` inlines the other
notebook's cells into the same context (paths relative to the notebook's folder; a cycle is an
error); after a restart the run is bound into the fresh Python again before the next cell.
The record of the run (an .ipynb with outputs) is readable at any time, also after a timeout.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from kiln.driver.dbutils.binding import (
    EXIT_MIME,
    RESTART_MIME,
    TASK_VALUE_MIME,
    RunBinding,
    resolve_notebook_path,
)
from kiln.driver.dbutils.errors import ExecutionError
from kiln.driver.notebook.commands import bind_code, cell_code, pop_code, push_code
from kiln.driver.notebook.ipynb import RecordedCell, RunRecord, clean_output
from kiln.driver.notebook.magics import CellCommand, MagicError, parse_cell
from kiln.driver.notebook.markdown import render_markdown
from kiln.driver.notebook.source import NotebookError, NotebookSource, SourceCell, parse_ipynb

__all__ = [
    "CellOutcome",
    "CellStatus",
    "NotebookHost",
    "NotebookRunner",
    "RunOutcome",
    "RunResultState",
]

# Deeper %run nesting than this is surely a mistake (a cycle is caught before).
MAX_RUN_DEPTH = 32
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class CellStatus(StrEnum):
    """How one command in the context ended."""

    OK = "ok"
    ERROR = "error"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class CellOutcome:
    """The end of one command: its status and its outputs (nbformat output dicts)."""

    status: CellStatus
    outputs: list[dict[str, Any]]


class NotebookHost(Protocol):
    """The context a run executes in, and the workspace it reads notebooks from."""

    async def fetch(self, path: str) -> str | bytes:
        """The notebook at `path` as nbformat JSON; NotebookError if there is none."""
        ...

    async def execute(self, code: str) -> CellOutcome:
        """Run Python code in the run's context and wait for its end."""
        ...


class RunResultState(StrEnum):
    """How a notebook run ended (Databricks' run result states)."""

    SUCCESS = "SUCCESS"
    FAILED = "FAILED"
    TIMEDOUT = "TIMEDOUT"
    CANCELED = "CANCELED"


@dataclass
class RunOutcome:
    """A finished run: its state, exit value or error, task values and notebook."""

    state: RunResultState
    exit_value: str | None = None
    error: str | None = None
    error_trace: str | None = None
    task_values: dict[str, Any] = field(default_factory=dict)
    notebook: dict[str, Any] | None = None


class _Exit(Exception):
    def __init__(self, value: str) -> None:
        super().__init__(value)
        self.value = value


class _Failed(Exception):
    def __init__(self, error: str, trace: str | None = None) -> None:
        super().__init__(error)
        self.error = error
        self.trace = trace


def _error_output(ename: str, evalue: str) -> dict[str, Any]:
    return {"output_type": "error", "ename": ename, "evalue": evalue, "traceback": []}


def _plain(trace: list[str]) -> str:
    return "\n".join(_ANSI.sub("", line) for line in trace)


class NotebookRunner:
    """One run of one notebook in one context."""

    def __init__(self, host: NotebookHost, binding: RunBinding) -> None:
        self.host = host
        self.binding = binding
        self.record: RunRecord | None = None
        self.task_values: dict[str, Any] = {}
        self._count = 0
        # The parameters in force: the run's, then one level per `%run` with arguments.
        self._parameters: list[dict[str, str]] = [dict(binding.parameters)]
        self._restarted = False
        # How many times the run was bound into a fresh Python (after restarts).
        self._bindings = 0
        # The binding not yet sent: it travels with the next command (one round trip, not two).
        self._prelude: str | None = None

    def notebook(self) -> dict[str, Any] | None:
        """The run's notebook with the outputs so far (None before the notebook was read)."""
        return self.record.to_ipynb() if self.record is not None else None

    async def run(self) -> RunOutcome:
        """Run every cell until the end, an exit or an error."""
        try:
            source = await self._load(self.binding.notebook_path)
            self.record = RunRecord(source, [_markdown(c) for c in source.cells])
            self._prelude = bind_code(self.binding)
            for cell, recorded in zip(source.cells, self.record.cells, strict=True):
                await self._cell(cell, source, recorded, (source.path,))
        except _Exit as exit_:
            return self._outcome(RunResultState.SUCCESS, exit_value=exit_.value)
        except _Failed as failed:
            return self._outcome(RunResultState.FAILED, error=failed.error, trace=failed.trace)
        return self._outcome(RunResultState.SUCCESS)

    def _outcome(
        self,
        state: RunResultState,
        exit_value: str | None = None,
        error: str | None = None,
        trace: str | None = None,
    ) -> RunOutcome:
        return RunOutcome(
            state=state,
            exit_value=exit_value,
            error=error,
            error_trace=trace,
            task_values=dict(self.task_values),
            notebook=self.notebook(),
        )

    async def _load(self, path: str) -> NotebookSource:
        try:
            return parse_ipynb(path, await self.host.fetch(path))
        except NotebookError as exc:
            raise _Failed(str(exc)) from None

    async def _execute(self, code: str) -> CellOutcome:
        """Run a command, the pending binding first (on the same round trip)."""
        if self._prelude is not None:
            code, self._prelude = f"{self._prelude}\n{code}", None
        return await self.host.execute(code)

    async def _internal(self, code: str) -> None:
        """Run the runner's own code in the context (its outputs are not the notebook's)."""
        outcome = await self._execute(code)
        if outcome.status != CellStatus.OK:
            errors = [o for o in outcome.outputs if o.get("output_type") == "error"]
            why = f"{errors[-1].get('ename')}: {errors[-1].get('evalue')}" if errors else ""
            raise _Failed(f"The execution context could not be prepared for the run. {why}")

    async def _cell(
        self,
        cell: SourceCell,
        notebook: NotebookSource,
        target: RecordedCell,
        stack: tuple[str, ...],
    ) -> None:
        try:
            command = parse_cell(cell.command, notebook.language)
        except MagicError as exc:
            target.add([_error_output("MagicError", str(exc))])
            raise _Failed(f"MagicError: {exc}") from None
        if command.kind == "md":
            if not target.markdown:  # an inlined notebook's markdown shows as output
                target.add([_markdown_output(command.body)])
            return
        if command.kind == "run":
            await self._run_magic(command, notebook, target, stack)
            return
        if self._restarted:
            await self._rebind()
        if target.execution_count is None:
            self._count += 1
            target.execution_count = self._count
        outcome = await self._execute(cell_code(command))
        exit_value = self._collect(outcome, target)
        if exit_value is not None:
            raise _Exit(exit_value)
        if outcome.status == CellStatus.CANCELLED:
            raise _Failed("The command was cancelled.")
        if outcome.status == CellStatus.ERROR:
            raise self._failure(outcome)

    def _collect(self, outcome: CellOutcome, target: RecordedCell) -> str | None:
        """Record a command's outputs; take out the runner's data. The exit value, if any."""
        exit_value: str | None = None
        kept = []
        for raw in outcome.outputs:
            data = raw.get("data") if isinstance(raw, dict) else None
            if isinstance(data, dict):
                if isinstance(data.get(EXIT_MIME), dict):
                    exit_value = str(data[EXIT_MIME].get("value", ""))
                payload = data.get(TASK_VALUE_MIME)
                if isinstance(payload, dict) and isinstance(payload.get("key"), str):
                    self.task_values[payload["key"]] = payload.get("value")
                if RESTART_MIME in data:
                    self._restarted = True
            if exit_value is not None and raw.get("output_type") == "error":
                continue  # the exit's own exception, if the REPL reported one
            cleaned = clean_output(raw, target.execution_count)
            if cleaned is not None:
                kept.append(cleaned)
        target.add(kept)
        return exit_value

    def _failure(self, outcome: CellOutcome) -> _Failed:
        errors = [o for o in outcome.outputs if o.get("output_type") == "error"]
        if not errors:
            return _Failed("The command failed without an error message.")
        last = errors[-1]
        trace = last.get("traceback")
        lines = [str(t) for t in trace] if isinstance(trace, list) else []
        message = f"{last.get('ename', 'Error')}: {last.get('evalue', '')}".rstrip(": ")
        return _Failed(_ANSI.sub("", message), _plain(lines) or None)

    async def _rebind(self) -> None:
        """Bind the run into a freshly restarted Python, with the parameters now in force (with
        the next command)."""
        self._restarted = False
        self._bindings += 1
        binding = RunBinding(
            notebook_path=self.binding.notebook_path,
            run_id=self.binding.run_id,
            parameters=self._parameters[-1],
            task_values=self.binding.task_values,
            task_key=self.binding.task_key,
        )
        self._prelude = bind_code(binding)

    async def _run_magic(
        self,
        command: CellCommand,
        notebook: NotebookSource,
        target: RecordedCell,
        stack: tuple[str, ...],
    ) -> None:
        try:
            path = resolve_notebook_path(command.target, notebook.path)
        except ExecutionError as exc:
            target.add([_error_output("NotebookError", str(exc))])
            raise _Failed(f"%run: {exc}") from None
        if path in stack:
            chain = " -> ".join((*stack[stack.index(path) :], path))
            message = f"%run cycle: {chain}"
            target.add([_error_output("NotebookError", message)])
            raise _Failed(message)
        if len(stack) >= MAX_RUN_DEPTH:
            message = f"%run nested deeper than {MAX_RUN_DEPTH} notebooks at {path}"
            target.add([_error_output("NotebookError", message)])
            raise _Failed(message)
        try:
            child = await self._load(path)
        except _Failed as failed:
            target.add([_error_output("NotebookError", f"%run {command.target}: {failed.error}")])
            raise
        if target.execution_count is None:
            self._count += 1
            target.execution_count = self._count
        bindings = self._bindings
        if command.arguments:
            self._parameters.append({**self._parameters[-1], **command.arguments})
            await self._internal(push_code(command.arguments))
        for cell in child.cells:
            await self._cell(cell, child, target, (*stack, path))
        if command.arguments:
            self._parameters.pop()
            if self._restarted or self._bindings != bindings:
                # A fresh Python holds the arguments as its base: bind the outer ones again.
                await self._rebind()
            else:
                await self._internal(pop_code())


def _markdown(cell: SourceCell) -> str | None:
    """The markdown of a `%md` cell (shown as a markdown cell), else None."""
    if cell.markdown:
        return cell.command[len("%md\n") :] if cell.command.startswith("%md\n") else ""
    try:
        command = parse_cell(cell.command, "python")
    except MagicError:
        return None
    return command.body if command.kind == "md" else None


def _markdown_output(text: str) -> dict[str, Any]:
    return {
        "output_type": "display_data",
        "data": {"text/markdown": text, "text/html": render_markdown(text)},
        "metadata": {},
    }
