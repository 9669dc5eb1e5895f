"""The REPL process of one execution context: `python -m kiln.driver.repl <fd>`.

It talks to the driver runtime over the inherited socket (`kiln.driver.channel`):

1. `init` (access mode, how to reach Spark, output limits): import what the mode needs, attach
   to Spark, run a tiny query, answer `ready`. A REPL started ahead of demand (a spare) waits
   here, warm, until a context is created.
2. `assign` (context id, user, token, control-plane URL, working directory, job tag): become
   that context: its own `__main__` namespace with `spark`, `sc`, `display`, `displayHTML` and
   `dbutils`; answer `assigned`.
3. `execute` (command id, code, language): run it on the main thread; answer `done` with the
   outcome and its outputs. After a command that asked for a restart of Python
   (`dbutils.library.restartPython()`, `%pip`), the process exits and the driver starts a
   fresh one for the same context.

SIGINT is a cancel: it interrupts the running command (and cancels this context's Spark jobs);
it is ignored between commands.
"""

from __future__ import annotations

import builtins
import contextlib
import logging
import os
import signal
import socket
import sys
import threading
import types
from typing import Any

from kiln.driver.channel import Channel, ChannelClosed
from kiln.driver.repl import figures
from kiln.driver.repl.display import Displayer
from kiln.driver.repl.executor import Executor
from kiln.driver.repl.outputs import OutputLimits
from kiln.driver.repl.partials import PartialOutputs
from kiln.driver.repl.spark import SparkAttachment, attach_spark, install_tables

__all__ = ["Repl", "ReplHost", "main"]

log = logging.getLogger("kiln.driver.repl")


class ReplHost:
    """The context as `dbutils` sees it (`kiln.driver.dbutils.ContextHost`)."""

    def __init__(self, repl: Repl, assignment: dict[str, Any]) -> None:
        self._repl = repl
        self.cluster_id: str = repl.cluster_id
        self.context_id: str = str(assignment["context_id"])
        self.user_name: str = str(assignment.get("user_name") or "")
        self.api_url: str = str(assignment.get("api_url") or "")
        self.token: str = str(assignment.get("token") or "")
        self.dbfs_root: str | None = assignment.get("dbfs_root") or None

    def emit(self, output: dict[str, Any]) -> None:
        """Add an nbformat output dict to the running command's outputs."""
        self._repl.executor.emit(output)

    def request_restart(self) -> None:
        """Restart this context's Python once the running command ends."""
        self._repl.restart_requested = True


class _ConnectSparkContext:
    """`sc` on a standard-access cluster: Spark Connect has no SparkContext, and says so."""

    def __init__(self, spark: Any) -> None:
        self._spark = spark

    def __getattr__(self, name: str) -> Any:
        return getattr(self._spark.sparkContext, name)

    def __repr__(self) -> str:
        return "<no SparkContext: this cluster uses standard access mode (Spark Connect)>"


class _MissingDbutils:
    """`dbutils` before `kiln.driver.dbutils` exists in this installation."""

    def __getattr__(self, name: str) -> Any:
        raise NotImplementedError(f"dbutils.{name} is not available in this Kiln installation.")


class Repl:
    """One context's Python: its Spark attachment, namespace and command loop."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.cluster_id = ""
        self.limits = OutputLimits()
        self.attachment: SparkAttachment | None = None
        self.namespace: dict[str, Any] = {}
        self.executor = Executor(self.namespace, self.limits, spark=self._spark)
        # A running command's outputs reach the driver as they are produced (web notebooks).
        self.partials = PartialOutputs(channel.send, self.executor.snapshot)
        self.executor.on_output = self.partials.changed
        self.host: ReplHost | None = None
        # What `kiln.driver.dbutils.attach` returned (its client is closed at the end).
        self._attached: Any = None
        self.restart_requested = False

    def _spark(self) -> Any:
        if self.attachment is None:
            raise RuntimeError("this context is not attached to Spark")
        return self.attachment.spark

    # -- start -------------------------------------------------------------------------------

    def init(self, message: dict[str, Any]) -> dict[str, Any]:
        """Attach to Spark in the given mode and warm up; the `ready` answer."""
        self.cluster_id = str(message.get("cluster_id") or "")
        self.limits = OutputLimits.of(message.get("limits"))
        self.executor.limits = self.limits
        mode = str(message["mode"])
        self.attachment = attach_spark(mode, dict(message.get("spark") or {}))
        signal.signal(signal.SIGINT, self._on_sigint)
        # pyspark logs every SQL error with its query context to stderr; the error output
        # already says it.
        logging.getLogger("SQLQueryContextLogger").setLevel(logging.CRITICAL)
        try:
            self.attachment.warm_up()
        except Exception:
            log.warning("warm-up query failed", exc_info=True)
        self._preload()
        return {"event": "ready", "pid": os.getpid(), "session_id": self.attachment.session_id}

    def _preload(self) -> None:
        # Paid before a context is created, not by its first command.
        for module in ("kiln.driver.dbutils", "pandas"):
            try:
                __import__(module)
            except ImportError:
                continue

    def assign(self, message: dict[str, Any]) -> dict[str, Any]:
        """Become one context: working directory, environment, namespace, dbutils."""
        assert self.attachment is not None
        cwd = message.get("cwd")
        if cwd:
            os.chdir(cwd)
        os.environ.update({str(k): str(v) for k, v in (message.get("env") or {}).items()})
        self.attachment.set_tag(str(message["tag"]))
        self.host = ReplHost(self, message)
        module = types.ModuleType("__main__")
        self.namespace = module.__dict__
        self.namespace["__builtins__"] = builtins
        sys.modules["__main__"] = module
        self.executor.namespace = self.namespace
        displayer = Displayer(self.executor.emit, lambda: self.limits)
        spark = self.attachment.spark
        install_tables(spark, self.host)
        self.namespace.update(
            spark=spark,
            sc=self.attachment.sc
            if self.attachment.sc is not None
            else _ConnectSparkContext(spark),
            display=displayer.display,
            displayHTML=displayer.display_html,
            dbutils=self._dbutils(),
        )
        self.executor.install_streams()
        figures.set_show(self.executor.show_figures)
        return {"event": "assigned", "context_id": self.host.context_id}

    def _dbutils(self) -> Any:
        try:
            from kiln.driver.dbutils import attach
        except ImportError:
            return _MissingDbutils()
        assert self.host is not None
        attached = attach(self.host)
        self._attached = attached
        self.executor.redact = attached.redact
        return attached.dbutils

    # -- commands ----------------------------------------------------------------------------

    def _on_sigint(self, signum: int, frame: object) -> None:
        if not self.executor.running:
            return  # a cancel that arrived after its command ended
        self.executor.cancel_requested = True
        attachment = self.attachment
        if attachment is not None:
            # Cancel from another thread: this one is in the middle of the user's code.
            threading.Thread(target=_quietly, args=(attachment.cancel_jobs,), daemon=True).start()
        raise KeyboardInterrupt

    def execute(self, message: dict[str, Any]) -> dict[str, Any]:
        """Run one command; the `done` answer."""
        api_url = message.get("api_url")
        if api_url and self.host is not None and api_url != self.host.api_url:
            # The control plane came back at another address (a restart of `kiln up`).
            self.host.api_url = str(api_url)
            os.environ["DATABRICKS_HOST"] = str(api_url)
        self.partials.begin(str(message.get("id") or ""))
        try:
            outcome = self.executor.run(
                str(message.get("code") or ""), str(message.get("language"))
            )
        finally:
            self.partials.end()
        if self.executor.interrupted and self.attachment is not None:
            # An interrupted py4j call drops its connection, and the JVM thread that held this
            # context's job tag with it: tag the next thread the REPL gets.
            with contextlib.suppress(Exception):
                self.attachment.set_tag(self.attachment.tag)
        answer = {"event": "done", "id": message.get("id"), **outcome.to_json()}
        answer["restart"] = self.restart_requested
        return answer

    def serve(self) -> int:
        """Answer the driver until it says stop, goes away, or a restart is due."""
        try:
            self.channel.send(self.init(self.channel.receive()))
            while True:
                message = self.channel.receive()
                op = message.get("op")
                if op == "assign":
                    self.channel.send(self.assign(message))
                elif op == "execute":
                    self.channel.send(self.execute(message))
                    if self.restart_requested:
                        self._release()
                        return 0
                elif op == "shutdown":
                    self._release()
                    return 0
        except ChannelClosed:
            self._release()
            return 0

    def _release(self) -> None:
        close = getattr(self._attached, "close", None)
        if callable(close):
            _quietly(close)
        if self.attachment is not None:
            _quietly(self.attachment.close)


def _quietly(call: Any) -> None:
    try:
        call()
    except Exception:
        log.debug("cancelling Spark jobs failed", exc_info=True)


def main(argv: list[str] | None = None) -> int:
    """Entry point: serve the driver over the socket whose descriptor is the one argument."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m kiln.driver.repl <fd>", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # py4j logs every connection a cancel cuts short; the command's own output says enough.
    logging.getLogger("py4j").setLevel(logging.WARNING)
    # Between commands SIGINT is ignored by the handler installed once Spark is attached.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    channel = Channel(socket.socket(fileno=int(args[0])))
    code = Repl(channel).serve()
    sys.stdout = sys.__stdout__
    sys.stderr = sys.__stderr__
    # Skip interpreter teardown: the Spark client threads need no goodbye, the driver may
    # already be starting this context's next Python.
    logging.shutdown()
    os._exit(code)


if __name__ == "__main__":
    main()
