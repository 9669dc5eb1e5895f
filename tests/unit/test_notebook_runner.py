"""The notebook runner against a fake context: a namespace with a real dbutils where each
command is `exec`uted, stdout and dbutils' outputs collected as the REPL would."""

from __future__ import annotations

import contextlib
import io
import traceback
from pathlib import Path
from typing import Any

import nbformat
import pytest

from kiln.driver.dbutils import NotebookExit, RunBinding, attach
from kiln.driver.notebook import (
    CellOutcome,
    CellStatus,
    NotebookError,
    NotebookRunner,
    RunResultState,
)
from kiln.workspace import Cell, Language, Notebook
from kiln.workspace.notebook_formats import to_jupyter


class FakeFrame:
    def __init__(self, query: str) -> None:
        self.query = query
        self.columns = ["value"] if query.lstrip().upper().startswith("SELECT") else []


class FakeSpark:
    def __init__(self) -> None:
        self.queries: list[tuple[str, dict[str, str] | None]] = []

    def sql(self, query: str, args: dict[str, str] | None = None) -> FakeFrame:
        self.queries.append((query, args))
        return FakeFrame(query)


class _Stdout(io.TextIOBase):
    def __init__(self, sink: list[dict[str, Any]]) -> None:
        self.sink = sink

    def write(self, text: str) -> int:
        self.sink.append({"output_type": "stream", "name": "stdout", "text": text})
        return len(text)


class FakeContext:
    """Notebooks by path, and one Python 'context' that restarts when asked."""

    cluster_id = "c-1"
    context_id = "ctx-1"
    user_name = "someone@example.com"
    api_url = "http://127.0.0.1:9"
    token = "dapi-fake"
    dbfs_root: str | None = None

    def __init__(self, notebooks: dict[str, Notebook], exit_as_error: bool = False) -> None:
        self.notebooks = notebooks
        self.exit_as_error = exit_as_error
        self.spark = FakeSpark()
        self.codes: list[str] = []
        self.restarts = 0
        self._outputs: list[dict[str, Any]] = []
        self._restart = False
        self._fresh()

    def _fresh(self) -> None:
        self.attached = attach(self)
        self.namespace: dict[str, Any] = {
            "dbutils": self.attached.dbutils,
            "spark": self.spark,
            "display": self._display,
        }

    def _display(self, value: Any) -> None:
        if isinstance(value, FakeFrame):
            text = value.query
        else:
            text = value.to_string() if hasattr(value, "to_string") else repr(value)
        self.emit({"output_type": "display_data", "data": {"text/plain": text}, "metadata": {}})

    # ContextHost
    def emit(self, output: dict[str, Any]) -> None:
        self._outputs.append(output)

    def request_restart(self) -> None:
        self._restart = True

    # NotebookHost
    async def fetch(self, path: str) -> str:
        if path not in self.notebooks:
            raise NotebookError(f"Notebook not found: {path}")
        return to_jupyter(self.notebooks[path], path.rsplit("/", 1)[-1])

    async def execute(self, code: str) -> CellOutcome:
        self.codes.append(code)
        self._outputs = []
        status = CellStatus.OK
        try:
            with contextlib.redirect_stdout(_Stdout(self._outputs)):
                exec(compile(code, "<cell>", "exec"), self.namespace)
        except NotebookExit as exc:
            if self.exit_as_error:
                status = CellStatus.ERROR
                self._outputs.append(_error(exc))
        except Exception as exc:
            status = CellStatus.ERROR
            self._outputs.append(_error(exc))
        outputs = [self.attached.redact(o) for o in self._outputs]
        if self._restart:
            self._restart = False
            self.restarts += 1
            self._fresh()
        return CellOutcome(status, outputs)


def _error(exc: BaseException) -> dict[str, Any]:
    return {
        "output_type": "error",
        "ename": type(exc).__name__,
        "evalue": str(exc),
        "traceback": ["\x1b[0;31m" + line for line in traceback.format_exception(exc)],
    }


def nb(*cells: str, language: Language = Language.PYTHON) -> Notebook:
    return Notebook(language=language, cells=tuple(Cell(c) for c in cells))


def texts(cell: dict[str, Any]) -> str:
    parts = []
    for output in cell.get("outputs", []):
        if output["output_type"] == "stream":
            parts.append("".join(output["text"]))
        elif output["output_type"] in ("display_data", "execute_result"):
            for mime in ("text/plain", "text/markdown"):
                if output["data"].get(mime):
                    parts.append(str(output["data"][mime]))
        elif output["output_type"] == "error":
            parts.append(f"{output['ename']}: {output['evalue']}")
    return "\n".join(parts)


async def run(context: FakeContext, path: str, **binding: Any) -> Any:
    runner = NotebookRunner(context, RunBinding(path, run_id="run-1", **binding))
    return await runner.run()


async def test_a_notebook_with_every_magic(tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_text("x")
    context = FakeContext(
        {
            "/Users/a/main": nb(
                "%md\n# Report",
                'dbutils.widgets.text("name", "world")\n'
                'dbutils.widgets.dropdown("n", "1", ["1", "2"])\n'
                'print("hello", dbutils.widgets.get("name"))',
                "%run ./lib/helper",
                "print(greet())",
                "%sql\nSELECT * FROM ${name} WHERE n = :n",
                "%sh\necho from-shell\necho to-stderr >&2",
                f"%fs ls file:{tmp_path}",
                'dbutils.jobs.taskValues.set("rows", 3)',
                'dbutils.notebook.exit("all done")',
                'print("never")',
            ),
            "/Users/a/lib/helper": nb("%md ## Helper", "def greet():\n    return 'hi from helper'"),
        }
    )
    outcome = await run(context, "/Users/a/main", parameters={"name": "kiln"})
    assert outcome.state == RunResultState.SUCCESS, outcome.error
    assert outcome.exit_value == "all done"
    assert outcome.task_values == {"rows": 3}
    notebook = outcome.notebook
    nbformat.validate(nbformat.from_dict(notebook))  # type: ignore[no-untyped-call]
    cells = notebook["cells"]
    assert cells[0]["cell_type"] == "markdown" and "".join(cells[0]["source"]) == "# Report"
    assert "hello kiln" in texts(cells[1])  # the parameter wins over the default
    assert "## Helper" in texts(cells[2])  # the inlined notebook's markdown is shown
    assert cells[2]["outputs"][0]["data"]["text/html"] == "<h2>Helper</h2>\n"
    assert "hi from helper" in texts(cells[3])  # %run ran in the same namespace
    assert context.spark.queries == [("SELECT * FROM kiln WHERE n = :n", {"n": "1"})]
    assert "from-shell" in texts(cells[5]) and "to-stderr" in texts(cells[5])
    assert "f.txt" in texts(cells[6])
    assert texts(cells[7]) == ""  # the task value's marker is taken out
    assert texts(cells[8]) == "Notebook exited: all done"
    assert cells[9]["outputs"] == [] and cells[9]["execution_count"] is None
    assert [c.get("execution_count") for c in cells[1:9]] == [1, 2, 3, 4, 5, 6, 7, 8]
    for cell in cells:
        for output in cell.get("outputs", []):
            assert not any("vnd.kiln" in mime for mime in output.get("data", {}))


async def test_a_failing_cell_fails_the_run_and_stops_it() -> None:
    context = FakeContext({"/nb": nb("x = 1", "1 / 0", "print('never')")})
    outcome = await run(context, "/nb")
    assert outcome.state == RunResultState.FAILED
    assert outcome.error == "ZeroDivisionError: division by zero"
    assert "ZeroDivisionError" in outcome.error_trace and "\x1b" not in outcome.error_trace
    assert outcome.notebook["cells"][2]["outputs"] == []


@pytest.mark.parametrize(
    ("notebooks", "message"),
    [
        ({"/a": nb("%run ./b"), "/b": nb("%run ./a")}, "%run cycle: /a -> /b -> /a"),
        ({"/a": nb("%run /a")}, "%run cycle: /a -> /a"),
        ({"/a": nb("%run ./missing")}, "Notebook not found: /missing"),
        ({"/a": nb("%scala\nval x = 1")}, "Scala cells are not supported"),
        ({"/a": nb("%run ../../x")}, "climbs above"),
        ({"/a": nb("x <- 1", language=Language.R)}, "R cells are not supported"),
    ],
)
async def test_clear_errors(notebooks: dict[str, Notebook], message: str) -> None:
    outcome = await run(FakeContext(notebooks), "/a")
    assert outcome.state == RunResultState.FAILED
    assert message in outcome.error
    assert message in texts(outcome.notebook["cells"][0])


async def test_a_missing_notebook() -> None:
    outcome = await run(FakeContext({}), "/nope")
    assert outcome.state == RunResultState.FAILED
    assert outcome.error == "Notebook not found: /nope"
    assert outcome.notebook is None


async def test_restart_rebinds_the_run_and_clears_variables() -> None:
    context = FakeContext(
        {
            "/nb": nb(
                "x = 1\ndbutils.library.restartPython()",
                "print('x' in globals(), dbutils.widgets.get('p'))",
            )
        }
    )
    outcome = await run(context, "/nb", parameters={"p": "v"})
    assert outcome.state == RunResultState.SUCCESS, outcome.error
    assert context.restarts == 1
    assert "False v" in texts(outcome.notebook["cells"][1])


async def test_run_arguments_reach_only_the_inlined_notebook() -> None:
    context = FakeContext(
        {
            "/p/main": nb('%run ./child $who="child arg"', "print(dbutils.widgets.getAll())"),
            "/p/child": nb("print('child sees', dbutils.widgets.get('who'))"),
        }
    )
    outcome = await run(context, "/p/main", parameters={"top": "1"})
    assert outcome.state == RunResultState.SUCCESS, outcome.error
    assert "child sees child arg" in texts(outcome.notebook["cells"][0])
    assert texts(outcome.notebook["cells"][1]).strip() == "{'top': '1'}"


async def test_a_restart_inside_a_run_with_arguments_restores_the_outer_ones() -> None:
    context = FakeContext(
        {
            "/p/main": nb('%run ./child $who="inner"', "print(dbutils.widgets.getAll())"),
            "/p/child": nb(
                "dbutils.library.restartPython()", "print('child', dbutils.widgets.get('who'))"
            ),
        }
    )
    outcome = await run(context, "/p/main", parameters={"who": "outer"})
    assert outcome.state == RunResultState.SUCCESS, outcome.error
    assert "child inner" in texts(outcome.notebook["cells"][0])
    assert texts(outcome.notebook["cells"][1]).strip() == "{'who': 'outer'}"


async def test_sql_notebook_and_secret_redaction() -> None:
    context = FakeContext({"/q": nb("SELECT 1; SELECT 2", language=Language.SQL)})
    outcome = await run(context, "/q")
    assert outcome.state == RunResultState.SUCCESS
    assert [q for q, _ in context.spark.queries] == ["SELECT 1", "SELECT 2"]
    assert texts(outcome.notebook["cells"][0]) == "SELECT 2"
    context = FakeContext(
        {"/s": nb("dbutils.secrets._redactor.add('hunter2')\nprint('pw=hunter2')")}
    )
    outcome = await run(context, "/s")
    assert texts(outcome.notebook["cells"][0]) == "pw=[REDACTED]\n"


async def test_shell_and_pip_failures() -> None:
    context = FakeContext({"/sh": nb("%sh\necho before\nexit 3")})
    outcome = await run(context, "/sh")
    assert outcome.state == RunResultState.FAILED
    assert outcome.error == "CellFailed: %sh exited with status 3"
    assert "before" in texts(outcome.notebook["cells"][0])
    outcome = await run(FakeContext({"/pip": nb("%pip install nothing-here")}), "/pip")
    assert outcome.state == RunResultState.FAILED
    assert "not a cluster environment" in outcome.error
    outcome = await run(FakeContext({"/pip": nb("%pip frobnicate")}), "/pip")
    assert "%pip runs install" in outcome.error
    outcome = await run(FakeContext({"/fs": nb("%fs frobnicate /x")}), "/fs")
    assert "Unknown or malformed %fs command" in outcome.error


async def test_an_exit_reported_as_an_error_still_succeeds() -> None:
    context = FakeContext({"/nb": nb("dbutils.notebook.exit('v')")}, exit_as_error=True)
    outcome = await run(context, "/nb")
    assert outcome.state == RunResultState.SUCCESS
    assert outcome.exit_value == "v"
    assert texts(outcome.notebook["cells"][0]) == "Notebook exited: v"


async def test_the_record_is_readable_while_running() -> None:
    context = FakeContext({"/nb": nb("print(1)")})
    runner = NotebookRunner(context, RunBinding("/nb"))
    assert runner.notebook() is None
    await runner.run()
    assert runner.notebook()["cells"][0]["execution_count"] == 1


async def test_the_binding_travels_with_the_first_command() -> None:
    from kiln.driver.repl.cells import PRELUDE_TAG, compile_cell, split_prelude

    context = FakeContext({"/Users/a/one": nb('dbutils.notebook.exit(dbutils.widgets.get("x"))')})
    outcome = await run(context, "/Users/a/one", parameters={"x": "bound"})
    # One round trip: the binding, then the cell, in one command; the exit value comes back.
    assert outcome.state == RunResultState.SUCCESS and outcome.exit_value == "bound"
    assert len(context.codes) == 1
    prelude, cell = split_prelude(context.codes[0])
    assert prelude is not None and prelude.endswith(PRELUDE_TAG) and "bind_run" in prelude
    assert cell == 'dbutils.notebook.exit(dbutils.widgets.get("x"))'
    # The REPL keeps the cell's own lines: an indented cell or `from __future__` still compiles.
    assert split_prelude("print(1)  # not the tag\nx = 1") == (
        None,
        "print(1)  # not the tag\nx = 1",
    )
    assert split_prelude(f"bind(){PRELUDE_TAG}") == (None, f"bind(){PRELUDE_TAG}")
    _, indented = split_prelude(f"bind(){PRELUDE_TAG}\n    x = 1\n    x")
    assert compile_cell(indented, "<command-1>").last is not None
    _, future = split_prelude(f"bind(){PRELUDE_TAG}\nfrom __future__ import annotations\ny = 2")
    assert compile_cell(future, "<command-2>").body is not None


async def test_a_markdown_only_notebook_sends_no_command() -> None:
    context = FakeContext({"/Users/a/md": nb("%md\n# Only words")})
    outcome = await run(context, "/Users/a/md")
    assert outcome.state == RunResultState.SUCCESS and context.codes == []
