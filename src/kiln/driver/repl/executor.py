"""Running one command in a context's namespace, the way a notebook cell runs.

The value of a last expression is shown (`execute_result`), `print` output is kept in order
with `display` outputs, open matplotlib figures are shown at the end (as the inline backend
does), an exception becomes an `error` output with the user's frames only, SQL runs through
the context's SparkSession and shows its last result as a table (and as `_sqldf`).
"""

from __future__ import annotations

import copy
import io
import sys
import threading
from collections.abc import Callable
from typing import Any, TextIO

from kiln.driver.repl.cells import compile_cell, format_exception, split_prelude
from kiln.driver.repl.display import is_spark_dataframe, mime_bundle
from kiln.driver.repl.outputs import (
    OutputCollector,
    OutputLimits,
    display_data,
    error_output,
    execute_result,
)
from kiln.driver.repl.sql import run_sql

__all__ = ["CANCELLED", "ERROR", "EXIT", "OK", "Executor", "Outcome"]

OK = "ok"
ERROR = "error"
CANCELLED = "cancelled"
# `dbutils.notebook.exit(value)`: a normal end whose result is the value.
EXIT = "exit"


class Outcome:
    """How a command ended and what it output."""

    def __init__(self, status: str, outputs: list[dict[str, Any]], truncated: bool) -> None:
        self.status = status
        self.outputs = outputs
        self.truncated = truncated
        self.exit_value: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The form sent to the driver."""
        return {
            "status": self.status,
            "outputs": self.outputs,
            "truncated": self.truncated,
            "exit_value": self.exit_value,
        }


class _Capture(io.TextIOBase):
    """sys.stdout / sys.stderr of a context: text goes to the running command, if any."""

    def __init__(self, name: str, executor: Executor, fallback: TextIO) -> None:
        self.name = name
        self._executor = executor
        self._fallback = fallback

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        # Subprocesses handed sys.stdout write to the context's log, as on Databricks.
        return self._fallback.fileno()

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        if not self._executor.write(self.name, text):
            self._fallback.write(text)
        return len(text)

    def flush(self) -> None:
        self._fallback.flush()


class Executor:
    """Runs commands in one namespace; one command at a time, on the main thread."""

    def __init__(
        self,
        namespace: dict[str, Any],
        limits: OutputLimits,
        *,
        spark: Callable[[], Any] | None = None,
        redact: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> None:
        self.namespace = namespace
        self.limits = limits
        self.redact = redact
        self._spark = spark
        self.count = 0
        self._collector: OutputCollector | None = None
        self._lock = threading.Lock()
        # Set by the SIGINT handler: the interruption is a cancel, not the user's own.
        self.cancel_requested = False
        # Whether the last command was interrupted (a py4j call cut short loses its thread).
        self.interrupted = False
        # Told after each write or output of the running command (partial outputs).
        self.on_output: Callable[[], None] | None = None

    def install_streams(self) -> None:
        """Route sys.stdout and sys.stderr through the running command."""
        assert sys.__stdout__ is not None and sys.__stderr__ is not None
        sys.stdout = _Capture("stdout", self, sys.__stdout__)
        sys.stderr = _Capture("stderr", self, sys.__stderr__)

    @property
    def running(self) -> bool:
        """Whether a command is running now."""
        return self._collector is not None

    def write(self, name: str, text: str) -> bool:
        """Stream text into the running command (False when none runs)."""
        with self._lock:
            if self._collector is None:
                return False
            self._collector.write(name, text)
        if self.on_output is not None:
            self.on_output()
        return True

    def emit(self, output: dict[str, Any]) -> None:
        """Add an output to the running command (dropped when none runs)."""
        with self._lock:
            if self._collector is None:
                return
            self._collector.add(output)
        if self.on_output is not None:
            self.on_output()

    def snapshot(self, max_bytes: int) -> list[dict[str, Any]] | None:
        """The running command's outputs so far, copied and redacted (None when there is
        no command or they exceed `max_bytes`)."""
        with self._lock:
            collector = self._collector
            if collector is None or collector.text_chars + collector.rich_bytes > max_bytes:
                return None
            outputs = copy.deepcopy(collector.outputs)
        if self.redact is None:
            return outputs
        return [self.redact(o) for o in outputs]

    def run(self, code: str, language: str = "python") -> Outcome:
        """Run one command and return how it ended with its outputs."""
        self.count += 1
        collector = OutputCollector(self.limits, self.redact)
        self.cancel_requested = False
        self.interrupted = False
        status = OK
        exit_value: str | None = None
        with self._lock:
            self._collector = collector
        try:
            try:
                if language == "sql":
                    self._run_sql(code)
                else:
                    self._run_python(code)
                self._show_figures()
            except KeyboardInterrupt as exc:
                status = CANCELLED if self.cancel_requested else ERROR
                self.interrupted = True
                self._error(exc)
            except BaseException as exc:
                if _is_notebook_exit(exc):
                    status, exit_value = EXIT, str(getattr(exc, "value", ""))
                else:
                    status = ERROR
                    self._error(exc)
        except KeyboardInterrupt as exc:  # a cancel that landed while reporting an error
            status = CANCELLED
            self.interrupted = True
            self._error(exc)
        finally:
            with self._lock:
                self._collector = None
        sys.stdout.flush()
        outcome = Outcome(status, collector.finish(), collector.truncated)
        outcome.exit_value = exit_value
        return outcome

    def _run_python(self, code: str) -> None:
        prelude, code = split_prelude(code)
        if prelude is not None:
            exec(compile(prelude, f"<command-{self.count}-prelude>", "exec"), self.namespace)
        cell = compile_cell(code, f"<command-{self.count}>")
        if cell.body is not None:
            exec(cell.body, self.namespace)
        if cell.last is not None:
            value = eval(cell.last, self.namespace)
            if value is not None:
                self.namespace["_"] = value
                self.emit(execute_result(self._result_bundle(value), self.count))

    def _result_bundle(self, value: Any) -> dict[str, Any]:
        # A Spark DataFrame as a last expression shows its repr (display() shows its rows), a
        # string its repr (display() shows the text itself), as in IPython.
        if is_spark_dataframe(value) or isinstance(value, str):
            return {"text/plain": repr(value)}
        return mime_bundle(value, self.limits, tables=False)

    def _run_sql(self, code: str) -> None:
        if self._spark is None:
            raise RuntimeError("SQL needs the context's SparkSession, which is not attached.")
        frame = run_sql(self._spark(), code)
        self.namespace["_sqldf"] = frame
        if frame is not None and frame.columns:
            self.emit(display_data(mime_bundle(frame, self.limits)))

    def _show_figures(self) -> None:
        pyplot = sys.modules.get("matplotlib.pyplot")
        if pyplot is None:
            return
        for number in pyplot.get_fignums():
            figure = pyplot.figure(number)
            self.emit(display_data(mime_bundle(figure, self.limits)))
        pyplot.close("all")

    def show_figures(self) -> None:
        """Emit every open figure now (`plt.show()`)."""
        self._show_figures()

    def _error(self, exc: BaseException) -> None:
        ename, evalue, lines = format_exception(exc)
        self.emit(error_output(ename, evalue, lines))


def _is_notebook_exit(exc: BaseException) -> bool:
    module = sys.modules.get("kiln.driver.dbutils")
    exit_class = getattr(module, "NotebookExit", None) if module is not None else None
    return exit_class is not None and isinstance(exc, exit_class)
