"""What `%sql`, `%sh`, `%fs` and `%pip` cells run inside the context.

The runner turns each of these cells into one call of a function here, given the context's
globals (for `spark`, `display` and `dbutils`); output goes to stdout (captured by the REPL as
the cell's stream output, line by line as it comes) or through `display`.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import subprocess
import sys
import sysconfig
from typing import Any

from kiln.driver.notebook.magics import split_sql

__all__ = ["CellFailed", "run_fs", "run_pip", "run_shell", "run_sql", "sql_parameters"]

# Written by the libraries service into every cluster environment's site-packages
# (`kiln.compute.libraries.installer.build_env`): only such an environment takes %pip.
_CLUSTER_ENV_MARKER = "_kiln_base.pth"
_PIP_COMMANDS = ("install", "uninstall", "list", "show", "freeze", "download", "check")


class CellFailed(Exception):
    """A `%sh`, `%fs` or `%pip` cell that failed (its output says why)."""


def _global(namespace: dict[str, Any], name: str) -> Any:
    value = namespace.get(name)
    if value is None:
        raise CellFailed(f"`{name}` is not available in this context.")
    return value


# -- %sql --------------------------------------------------------------------------------------

_SUBSTITUTION = re.compile(r"\$\{([A-Za-z_][\w.]*)\}")
_MARKER = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")
_LITERALS = re.compile(
    r"'(?:\\.|[^'\\])*'|\"(?:\\.|[^\"\\])*\"|`[^`]*`|--[^\n]*|/\*.*?\*/", re.DOTALL
)


def sql_parameters(statement: str, values: dict[str, str]) -> tuple[str, dict[str, str]]:
    """A statement with `${name}` replaced by widget values, and the widget values its
    `:name` parameter markers use (markers outside literals and comments only)."""
    text = _SUBSTITUTION.sub(lambda m: values.get(m.group(1), m.group(0)), statement)
    bare = _LITERALS.sub(lambda m: " " * len(m.group(0)), text)
    names = {m.group(1) for m in _MARKER.finditer(bare)}
    return text, {name: values[name] for name in sorted(names) if name in values}


def run_sql(namespace: dict[str, Any], text: str) -> None:
    """Run a `%sql` cell's statements in order; display the last one's result."""
    spark = _global(namespace, "spark")
    dbutils = namespace.get("dbutils")
    values: dict[str, str] = dbutils.widgets.getAll() if dbutils is not None else {}
    result = None
    for statement in split_sql(text):
        query, args = sql_parameters(statement, values)
        result = spark.sql(query, args=args) if args else spark.sql(query)
    namespace["_sqldf"] = result  # as Databricks names the last SQL result
    if result is not None and result.columns:
        _global(namespace, "display")(result)


# -- %sh ---------------------------------------------------------------------------------------


def _stream(argv: list[str], env: dict[str, str] | None = None) -> int:
    """Run `argv`, copying its merged stdout/stderr to our stdout as it comes; its status."""
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        # Its own process group: a cancel of the cell stops the whole pipeline below.
        start_new_session=True,
    )
    assert proc.stdout is not None
    try:
        for line in iter(proc.stdout.readline, b""):
            sys.stdout.write(line.decode("utf-8", errors="replace"))
            sys.stdout.flush()
        return proc.wait()
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    finally:
        proc.stdout.close()


def run_shell(namespace: dict[str, Any], script: str) -> None:
    """Run a `%sh` cell with bash on the driver; a non-zero exit fails the cell."""
    shell = "/bin/bash" if os.path.exists("/bin/bash") else "/bin/sh"
    status = _stream([shell, "-c", script])
    if status != 0:
        raise CellFailed(f"%sh exited with status {status}")


# -- %fs ---------------------------------------------------------------------------------------


def _table(namespace: dict[str, Any], rows: list[Any]) -> None:
    """Display a list of named tuples as a table (printed if pandas is missing)."""
    try:
        import pandas as pd
    except ImportError:
        for row in rows:
            print(row)
        return
    columns = list(rows[0]._fields) if rows else []
    frame = pd.DataFrame([tuple(r) for r in rows], columns=columns or None)
    _global(namespace, "display")(frame)


def run_fs(namespace: dict[str, Any], line: str) -> None:
    """Run a `%fs` cell: `ls`, `head`, `put`, `mkdirs`, `rm`, `cp`, `mv`, `mounts`, `help`."""
    fs = _global(namespace, "dbutils").fs
    try:
        tokens = shlex.split(line)
    except ValueError as exc:
        raise CellFailed(f"Malformed %fs line: {exc}") from None
    if not tokens:
        fs.help()
        return
    command, *rest = tokens
    flags = {t for t in rest if t.startswith("-") and len(t) > 1}
    args = [t for t in rest if t not in flags]
    recurse = bool(flags & {"-r", "--recurse", "-R"})
    if command == "ls":
        _table(namespace, fs.ls(args[0] if args else "/"))
    elif command == "mounts":
        _table(namespace, fs.mounts())
    elif command == "help":
        fs.help(*args[:1])
    elif command == "head" and args:
        print(fs.head(args[0], *(int(a) for a in args[1:2])))
    elif command == "put" and len(args) == 2:
        print(fs.put(args[0], args[1], overwrite=bool(flags & {"-f", "--overwrite"})))
    elif command == "mkdirs" and len(args) == 1:
        print(fs.mkdirs(args[0]))
    elif command == "rm" and len(args) == 1:
        print(fs.rm(args[0], recurse=recurse))
    elif command in ("cp", "mv") and len(args) == 2:
        print(getattr(fs, command)(args[0], args[1], recurse=recurse))
    else:
        raise CellFailed(f"Unknown or malformed %fs command {line.strip()!r}; try %fs help.")


# -- %pip --------------------------------------------------------------------------------------


def _cluster_environment() -> bool:
    purelib = sysconfig.get_path("purelib")
    return sys.prefix != sys.base_prefix and os.path.exists(
        os.path.join(purelib, _CLUSTER_ENV_MARKER)
    )


def run_pip(namespace: dict[str, Any], line: str) -> None:
    """Run `pip` in the cluster's environment; after install/uninstall, restart Python."""
    try:
        tokens = shlex.split(line)
    except ValueError as exc:
        raise CellFailed(f"Malformed %pip line: {exc}") from None
    if not tokens or tokens[0] not in _PIP_COMMANDS:
        raise CellFailed(f"%pip runs {', '.join(_PIP_COMMANDS)}; got {line.strip()!r}.")
    if not _cluster_environment():
        raise CellFailed(
            "This cluster's Python is not a cluster environment of its own; %pip is refused "
            "rather than change Kiln's installation."
        )
    dbutils = namespace.get("dbutils")
    local = getattr(dbutils, "_dbfs_local", None)
    if local is not None:
        tokens = [local(t) if t.startswith("/dbfs/") else t for t in tokens]
    if tokens[0] == "uninstall" and not {"-y", "--yes"} & set(tokens):
        tokens.insert(1, "--yes")
    argv = [sys.executable, "-m", "pip", "--disable-pip-version-check", *tokens]
    env = {**os.environ, "PIP_NO_INPUT": "1"}
    status = _stream(argv, env)
    if status != 0:
        raise CellFailed(f"pip {tokens[0]} failed with status {status}")
    if tokens[0] in ("install", "uninstall") and dbutils is not None:
        print("Python restarts to use the updated packages (variables are cleared).")
        dbutils.library.restartPython()
