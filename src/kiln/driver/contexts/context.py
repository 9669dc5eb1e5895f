"""One execution context on the driver: its REPL process, its command queue and history.

Commands run one at a time, in order; a dispatcher thread per context hands the next queued
command to the REPL and waits for its `done` (or the process's end). A REPL that dies takes
its context to Error (its variables are gone) and its Spark jobs are cancelled by tag; the
other contexts never notice. A REPL that exits for a restart of Python is replaced by a
fresh one for the same context, and queued commands wait for it.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kiln.driver.contexts.process import ReplProcess, ReplUnavailable
from kiln.driver.contexts.states import (
    TERMINAL_COMMAND_STATES,
    CommandStatus,
    ContextStatus,
    transition,
)

__all__ = ["Command", "Context", "ContextOwner"]

log = logging.getLogger("kiln.driver.contexts")

# Commands kept per context for `commands/status` (the oldest finished ones go first).
HISTORY = 100
# How long a REPL may take to start and attach to Spark (a cold start imports pyspark).
START_SECONDS = 300.0
# A cancelled command that keeps running (it caught KeyboardInterrupt) is interrupted again.
REINTERRUPT_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class ContextOwner:
    """Who created the context: the only user who may use it."""

    user_id: int
    user_name: str


@dataclass
class Command:
    """One command and, once it ended, its outputs."""

    id: str
    code: str
    language: str
    status: CommandStatus = CommandStatus.QUEUED
    outputs: list[dict[str, Any]] = field(default_factory=list)
    truncated: bool = False
    exit_value: str | None = None
    # Why the command could not run to its end (the REPL died...); not a Python error.
    error: str | None = None
    created_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    # Bumped by each partial output while it runs (a status call may wait for the next one).
    version: int = 0

    @property
    def done(self) -> bool:
        """Whether the command reached a final status."""
        return self.status in TERMINAL_COMMAND_STATES

    def view(self) -> dict[str, Any]:
        """What `commands/status` answers."""
        body: dict[str, Any] = {"id": self.id, "status": self.status.value, "version": self.version}
        if not self.done and self.outputs:
            body["outputs"] = self.outputs  # so far (partial)
        if self.done:
            body.update(
                outputs=self.outputs,
                truncated=self.truncated,
                exit_value=self.exit_value,
                error=self.error,
            )
        return body


# Starts a REPL for a context: (mode, first start?) -> a process on its way to `ready`.
ProcessFactory = Callable[[bool], ReplProcess]


class Context:
    """One execution context and the thread that runs its commands."""

    def __init__(
        self,
        context_id: str,
        owner: ContextOwner,
        language: str,
        mode: str,
        token_id: str,
        assignment: dict[str, Any],
        start_process: ProcessFactory,
        cancel_jobs: Callable[[str, str], None],
        touch: Callable[[], None],
    ) -> None:
        self.id = context_id
        self.owner = owner
        self.language = language
        self.mode = mode
        self.token_id = token_id
        self.tag = str(assignment["tag"])
        self.status = ContextStatus.PENDING
        self.error: str | None = None
        self.created_at = time.time()
        self.process: ReplProcess | None = None
        self.commands: OrderedDict[str, Command] = OrderedDict()
        self._queue: deque[Command] = deque()
        self._running: Command | None = None
        self._destroyed = False
        self._assignment = assignment
        self._start_process = start_process
        self._cancel_jobs = cancel_jobs
        self._touch = touch
        self.changed = threading.Condition()
        self._thread = threading.Thread(target=self._run, name=f"kiln-context-{context_id}")
        self._thread.daemon = True
        self._thread.start()

    # -- what the API asks -------------------------------------------------------------------

    def wait_started(self, timeout: float) -> ContextStatus:
        """The status once the context left Pending, or after `timeout`."""
        with self.changed:
            self.changed.wait_for(lambda: self.status != ContextStatus.PENDING, timeout)
            return self.status

    def submit(self, code: str, language: str) -> Command:
        """Queue a command."""
        command = Command(id=secrets.token_hex(16), code=code, language=language)
        with self.changed:
            self.commands[command.id] = command
            self._queue.append(command)
            self._forget_old()
            self.changed.notify_all()
        return command

    def _forget_old(self) -> None:
        while len(self.commands) > HISTORY:
            oldest = next(iter(self.commands.values()))
            if not oldest.done:
                return
            del self.commands[oldest.id]

    def wait(self, command: Command, timeout: float, since: int | None = None) -> dict[str, Any]:
        """The command's view once it is done, or after `timeout` (a short long-poll); with
        `since`, also once its partial outputs moved past that version."""
        with self.changed:
            if timeout > 0:
                self.changed.wait_for(
                    lambda: command.done or (since is not None and command.version != since),
                    timeout,
                )
            return command.view()

    def cancel(self, command: Command) -> None:
        """Cancel a queued or running command (a finished one stays as it is)."""
        with self.changed:
            if command.status == CommandStatus.QUEUED:
                self._queue.remove(command)
                self._end(command, CommandStatus.CANCELLED)
                return
            if command.status != CommandStatus.RUNNING:
                return
            transition(command, CommandStatus.CANCELLING)
            process = self.process
        if process is not None:
            process.interrupt()
        # The driver cancels the context's jobs too: the REPL may be stuck in native code.
        self.cancel_spark()
        threading.Thread(target=self._reinterrupt, args=(command,), daemon=True).start()

    def _reinterrupt(self, command: Command) -> None:
        while True:
            with self.changed:
                if self.changed.wait_for(lambda: command.done, REINTERRUPT_SECONDS):
                    return
                process = self.process
            if process is None:
                return
            process.interrupt()

    def destroy(self, grace: float = 2.0) -> None:
        """Stop the context: its queued and running commands are cancelled, its process
        stopped (asked to leave, killed after `grace` seconds)."""
        with self.changed:
            self._destroyed = True
            running = [self._running] if self._running is not None else []
            for command in [*self._queue, *running]:
                if not command.done:
                    command.error = "The execution context was destroyed."
                    self._end(command, CommandStatus.CANCELLED)
            self._queue.clear()
            process = self.process
            self.changed.notify_all()
        if process is not None:
            process.on_event(None)
            process.stop(grace)
        self.cancel_spark()

    def set_api_url(self, api_url: str) -> None:
        """Where the control plane answers now (it may come back at another address)."""
        self._assignment["api_url"] = api_url

    def cancel_spark(self) -> None:
        """Cancel the Spark jobs this context started (by its tag, through the driver)."""
        process = self.process
        try:
            self._cancel_jobs(self.tag, process.session_id if process is not None else "")
        except Exception:
            log.warning("cancelling the jobs of context %s failed", self.id, exc_info=True)

    def busy(self) -> bool:
        """Whether a command is queued or running."""
        with self.changed:
            return self._running is not None or bool(self._queue)

    # -- the dispatcher ----------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._attach(first=True)
            while True:
                with self.changed:
                    self.changed.wait_for(lambda: self._destroyed or bool(self._queue))
                    if self._destroyed:
                        return
                    command = self._queue.popleft()
                    transition(command, CommandStatus.RUNNING)
                    self._running = command
                    process = self.process
                self._touch()
                self._execute(command, process)
                self._touch()
                with self.changed:
                    self._running = None
                    restart = self.status == ContextStatus.PENDING and not self._destroyed
                if restart:
                    self._attach(first=False)
        except ReplUnavailable as exc:
            self._fail(f"The execution context could not start its Python process: {exc}.")
        except Exception as exc:  # a bug must not leave clients polling forever
            log.exception("context %s failed", self.id)
            self._fail(f"The execution context failed: {exc!r}")

    def _attach(self, *, first: bool) -> None:
        process = self._start_process(first)
        with self.changed:
            old, self.process = self.process, process
            destroyed = self._destroyed
        if old is not None:
            old.on_event(None)
        if destroyed:
            process.stop()
            return
        process.on_event(lambda message: self._on_event(message, process))
        process.wait_ready(START_SECONDS)
        process.assign(self._assignment, START_SECONDS)
        with self.changed:
            if self.status == ContextStatus.PENDING:
                transition(self, ContextStatus.RUNNING)
            self.changed.notify_all()

    def _execute(self, command: Command, process: ReplProcess | None) -> None:
        if process is None:
            raise ReplUnavailable("no Python process")
        message = {
            "op": "execute",
            "id": command.id,
            "code": command.code,
            "language": command.language,
            "api_url": self._assignment.get("api_url"),
        }
        # A process that is gone ends the command through its exit event.
        with contextlib.suppress(ReplUnavailable):
            process.send(message)
        with self.changed:
            self.changed.wait_for(lambda: command.done)

    def _on_event(self, message: dict[str, Any], process: ReplProcess) -> None:
        event = message.get("event")
        with self.changed:
            if process is not self.process:
                return  # the process this context had before a restart
            command = self._running
            if event == "done" and command is not None and message.get("id") == command.id:
                command.outputs = list(message.get("outputs") or [])
                command.truncated = bool(message.get("truncated"))
                command.exit_value = message.get("exit_value")
                cancelled = message.get("status") == "cancelled"
                self._end(command, CommandStatus.CANCELLED if cancelled else CommandStatus.FINISHED)
                if message.get("restart"):
                    transition(self, ContextStatus.PENDING)
            elif (
                event == "partial"
                and command is not None
                and message.get("id") == command.id
                and not command.done
            ):
                command.outputs = list(message.get("outputs") or [])
                command.version += 1
            elif event == "exit":
                self._on_exit(message.get("code"))
            self.changed.notify_all()

    def _on_exit(self, code: object) -> None:
        if self._destroyed or self.status == ContextStatus.PENDING:
            return  # stopped on purpose, or leaving for a restart
        reason = (
            f"The Python process of execution context {self.id} exited unexpectedly "
            f"(exit code {code}); its variables are lost. Create a new context."
        )
        log.warning("context %s: REPL exited with %s", self.id, code)
        if self._running is not None and not self._running.done:
            self._running.error = reason
            self._end(self._running, CommandStatus.ERROR)
        for queued in self._queue:
            queued.error = reason
            self._end(queued, CommandStatus.ERROR)
        self._queue.clear()
        self.error = reason
        transition(self, ContextStatus.ERROR)
        # Its Spark jobs would run on: nobody is left to want their results.
        threading.Thread(target=self.cancel_spark, daemon=True).start()

    def _end(self, command: Command, status: CommandStatus) -> None:
        transition(command, status)
        command.finished_at = time.time()

    def _fail(self, reason: str) -> None:
        with self.changed:
            self.error = reason
            if self.status != ContextStatus.ERROR:
                transition(self, ContextStatus.ERROR)
            for command in [*self._queue, *([self._running] if self._running else [])]:
                if not command.done:
                    command.error = reason
                    self._end(command, CommandStatus.ERROR)
            self._queue.clear()
            self.changed.notify_all()

    def view(self) -> dict[str, Any]:
        """What `contexts/status` answers (and the control plane's bookkeeping)."""
        return {
            "id": self.id,
            "status": self.status.value,
            "error": self.error,
            "language": self.language,
            "mode": self.mode,
            "user_id": self.owner.user_id,
            "user_name": self.owner.user_name,
            "token_id": self.token_id,
            "created_at": self.created_at,
        }
