"""A run's record as .ipynb (output cleaning, merging, validity) and its HTML export."""

from __future__ import annotations

import base64
from typing import Any

import nbformat

from kiln.compute.notebook_runs import notebook_html
from kiln.driver.dbutils import EXIT_MIME, TASK_VALUE_MIME
from kiln.driver.notebook import RunRecord, clean_output
from kiln.driver.notebook.source import NotebookSource, SourceCell, parse_ipynb
from kiln.driver.repl import TABLE_MIME
from kiln.workspace import Cell, Language, Notebook
from kiln.workspace.notebook_formats import to_jupyter
from kiln.workspace.notebook_html import from_html


def test_clean_output() -> None:
    assert clean_output({"output_type": "stream", "name": "weird", "text": ["a", "b"]}, 1) == {
        "output_type": "stream",
        "name": "stdout",
        "text": "ab",
    }
    result = clean_output({"output_type": "execute_result", "data": {"text/plain": "2"}}, 7)
    assert result == {
        "output_type": "execute_result",
        "data": {"text/plain": "2"},
        "metadata": {},
        "execution_count": 7,
    }
    marker = {
        "output_type": "display_data",
        "data": {TASK_VALUE_MIME: {"key": "k"}, "text/plain": ""},
    }
    assert clean_output(marker, 1) is None
    exit_ = {
        "output_type": "display_data",
        "data": {EXIT_MIME: {"value": "v"}, "text/plain": "Notebook exited: v"},
    }
    assert clean_output(exit_, 1)["data"] == {"text/plain": "Notebook exited: v"}  # type: ignore[index]
    error = clean_output({"output_type": "error", "ename": "E", "evalue": 3, "traceback": "x"}, 1)
    assert error == {"output_type": "error", "ename": "E", "evalue": "3", "traceback": []}
    assert clean_output({"output_type": "unknown"}, 1) is None
    assert clean_output("not a dict", 1) is None


def _record() -> RunRecord:
    source = NotebookSource(
        path="/Users/a/report",
        language="python",
        cells=(
            SourceCell("%md\n# Report <script>alert(1)</script>", markdown=True),
            SourceCell("print('<b>hi</b>')", title="Say hi"),
            SourceCell("display(df)"),
            SourceCell("1/0"),
        ),
    )
    record = RunRecord(source, ["# Report <script>alert(1)</script>", None, None, None])
    record.cells[1].execution_count = 1
    record.cells[1].add(
        [
            {"output_type": "stream", "name": "stdout", "text": "<b>hi</b>\n"},
            {"output_type": "stream", "name": "stdout", "text": "again\n"},
            {"output_type": "stream", "name": "stderr", "text": "warn\n"},
        ]
    )
    record.cells[2].execution_count = 2
    png = base64.b64encode(b"\x89PNG fake").decode()
    record.cells[2].add(
        [
            {
                "output_type": "display_data",
                "data": {"text/html": "<table><tr><td>1</td></tr></table><script>x()</script>"},
                "metadata": {},
            },
            {"output_type": "display_data", "data": {"image/png": png}, "metadata": {}},
            {
                "output_type": "display_data",
                "data": {
                    TABLE_MIME: {
                        "schema": [{"name": "id", "type": "long"}, {"name": "s", "type": "string"}],
                        "data": [[1, "<img src=x onerror=alert(1)>"], [2, None]],
                        "truncated": True,
                    },
                    "text/html": "<table><tr><td>ignored</td></tr></table>",
                },
                "metadata": {},
            },
        ]
    )
    record.cells[3].execution_count = 3
    record.cells[3].add(
        [
            {
                "output_type": "error",
                "ename": "ZeroDivisionError",
                "evalue": "division by zero",
                "traceback": ["\x1b[31mZeroDivisionError\x1b[0m: division by zero"],
            }
        ]
    )
    return record


def test_record_is_a_valid_notebook_with_merged_streams() -> None:
    notebook = _record().to_ipynb()
    nbformat.validate(nbformat.from_dict(notebook))  # type: ignore[no-untyped-call]
    cells: list[dict[str, Any]] = notebook["cells"]
    assert cells[0]["cell_type"] == "markdown"
    assert [o["name"] for o in cells[1]["outputs"]] == ["stdout", "stderr"]
    assert "".join(cells[1]["outputs"][0]["text"]) == "<b>hi</b>\nagain\n"
    assert cells[1]["metadata"]["application/vnd.databricks.v1+cell"]["title"] == "Say hi"
    meta = notebook["metadata"]["application/vnd.databricks.v1+notebook"]
    assert meta["notebookName"] == "report" and meta["language"] == "python"
    # The runner reads its own record back: a run's notebook is a notebook too.
    again = parse_ipynb("/x", __import__("json").dumps(notebook))
    assert [c.command for c in again.cells][1] == "print('<b>hi</b>')"


def test_html_export_escapes_and_sandboxes_and_imports_back() -> None:
    page = notebook_html(_record().to_ipynb(), "report")
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page  # markdown's raw HTML is escaped
    assert "&lt;b&gt;hi&lt;/b&gt;" in page
    assert '<iframe sandbox="" ' in page and "<script>x()</script>" not in page
    assert 'src="data:image/png;base64,' in page
    assert "ZeroDivisionError: division by zero" in page and "\x1b" not in page
    assert '<h6 class="title">Say hi</h6>' in page
    assert "<th>id</th><th>s</th>" in page and "<td>null</td>" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page and "<img src=x" not in page
    assert "Showing the first rows only." in page
    assert page.count("<script>") == 1  # only the embedded model
    imported = from_html(page)
    assert imported.language == Language.PYTHON
    assert [c.command for c in imported.cells][1:] == ["print('<b>hi</b>')", "display(df)", "1/0"]


def test_workspace_export_parses_into_a_source() -> None:
    text = to_jupyter(
        Notebook(Language.SQL, (Cell("%md\n# T", "Intro"), Cell("SELECT 1"), Cell("%python\nx=1"))),
        "q",
    )
    source = parse_ipynb("/Users/a/q", text)
    assert source.language == "sql" and source.name == "q"
    assert [(c.command, c.title, c.markdown) for c in source.cells] == [
        ("%md\n# T", "Intro", True),
        ("SELECT 1", "", False),
        ("%python\nx=1", "", False),
    ]


def test_bad_notebook_documents() -> None:
    import pytest

    from kiln.driver.notebook import NotebookError

    for text, message in (
        ("not json", "not valid JSON"),
        ("[]", "not an nbformat 4"),
        ('{"cells": [1]}', "not an object"),
        ('{"cells": [{"cell_type": "code", "source": 5}]}', "must be text"),
    ):
        with pytest.raises(NotebookError, match=message):
            parse_ipynb("/x", text)
