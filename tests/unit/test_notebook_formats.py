"""Notebook format conversion: SOURCE, Jupyter, DBC model and HTML, for every language."""

from __future__ import annotations

import io
import json
import zipfile

import pytest

from kiln.errors import InvalidParameterValue
from kiln.workspace import Cell, Language, Notebook
from kiln.workspace.archives import is_zip, read_zip, write_zip
from kiln.workspace.notebook_formats import (
    from_dbc_model,
    from_jupyter,
    has_source_header,
    parse_source,
    render_source,
    to_dbc_model,
    to_jupyter,
)
from kiln.workspace.notebook_html import from_html, to_html

# The same notebook in each language: a plain cell, markdown, a foreign-language magic cell,
# a titled cell, a markdown cell with an empty line, and a cell ending in a newline.
FOREIGN = {
    Language.PYTHON: "%sql\nSELECT 1",
    Language.SQL: "%python\nprint(1)",
    Language.SCALA: "%python\nprint(1)",
    Language.R: "%sql\nSELECT 1",
}
CODE = {
    Language.PYTHON: "x = 1\nprint(x)",
    Language.SQL: "SELECT *\nFROM range(3)",
    Language.SCALA: 'val x = 1\nprintln("x")',
    Language.R: "x <- 1\nprint(x)",
}


def sample(language: Language) -> Notebook:
    return Notebook(
        language=language,
        cells=(
            Cell(CODE[language]),
            Cell("%md\n# Title\n\nSome *text*."),
            Cell(FOREIGN[language]),
            Cell(CODE[language], title="A titled cell"),
            Cell("%md\nline one\n\nline three"),
            Cell(CODE[language] + "\n"),
        ),
    )


@pytest.mark.parametrize("language", list(Language))
def test_source_round_trip_is_exact(language: Language) -> None:
    notebook = sample(language)
    text = render_source(notebook)
    assert text.startswith(f"{language.comment} Databricks notebook source\n")
    assert parse_source(text, language) == notebook
    assert render_source(parse_source(text, language)) == text


def test_source_layout_matches_databricks() -> None:
    text = render_source(sample(Language.SQL))
    assert text.startswith("-- Databricks notebook source\nSELECT *\nFROM range(3)\n\n")
    assert "\n\n-- COMMAND ----------\n\n-- MAGIC %md\n-- MAGIC # Title\n-- MAGIC\n" in text
    assert "-- DBTITLE 1,A titled cell\nSELECT *" in text
    assert text.endswith("FROM range(3)\n\n")


@pytest.mark.parametrize(
    ("language", "text"),
    [
        (Language.PYTHON, "# Databricks notebook source\n# MAGIC %md\n# MAGIC # Hi\n"),
        (Language.SQL, "-- Databricks notebook source\n-- MAGIC %md\n-- MAGIC # Hi\n"),
        (Language.SCALA, "// Databricks notebook source\n// MAGIC %md\n// MAGIC # Hi\n"),
        (Language.R, "# Databricks notebook source\n# MAGIC %md\n# MAGIC # Hi\n"),
    ],
)
def test_parse_magic_cells_per_language(language: Language, text: str) -> None:
    notebook = parse_source(text, language)
    assert notebook.cells == (Cell("%md\n# Hi"),)
    assert notebook.cell_languages() == ["md"]


def test_parse_tolerates_crlf_bom_and_missing_header() -> None:
    text = "\ufeff# Databricks notebook source\r\nprint(1)\r\n\r\n# COMMAND ----------\r\n\r\nx\r\n"
    assert parse_source(text, Language.PYTHON).cells == (Cell("print(1)"), Cell("x"))
    plain = parse_source("print(1)\nprint(2)\n", Language.PYTHON)
    assert plain.cells == (Cell("print(1)\nprint(2)"),)
    assert render_source(plain) == "# Databricks notebook source\nprint(1)\nprint(2)\n"


def test_parse_keeps_blank_lines_beyond_the_separator() -> None:
    text = "# Databricks notebook source\na\n\n\n# COMMAND ----------\n\n\nb\n"
    assert parse_source(text, Language.PYTHON).cells == (Cell("a\n"), Cell("\nb"))


def test_magic_prefix_on_non_magic_text_stays_code() -> None:
    # A cell of `# MAGIC` lines that is not a magic command is kept verbatim.
    text = "# Databricks notebook source\n# MAGIC not a magic\n"
    assert parse_source(text, Language.PYTHON).cells == (Cell("# MAGIC not a magic"),)


def test_header_of_another_language_is_code() -> None:
    text = "# Databricks notebook source\nSELECT 1\n"
    assert not has_source_header(text, Language.SQL)
    assert has_source_header(text, Language.PYTHON)
    assert parse_source(text, Language.SQL).cells[0].command.startswith("# Databricks")


@pytest.mark.parametrize("language", list(Language))
def test_jupyter_round_trip_keeps_cells_and_languages(language: Language) -> None:
    notebook = sample(language)
    document = json.loads(to_jupyter(notebook, "demo"))
    assert document["nbformat"] == 4
    meta = document["metadata"]["application/vnd.databricks.v1+notebook"]
    assert meta["language"] == language.value.lower()
    assert meta["notebookName"] == "demo"
    types = [c["cell_type"] for c in document["cells"]]
    assert types == ["code", "markdown", "code", "code", "markdown", "code"]
    assert "".join(document["cells"][1]["source"]) == "# Title\n\nSome *text*."
    assert "".join(document["cells"][2]["source"]) == FOREIGN[language]
    titled = document["cells"][3]["metadata"]["application/vnd.databricks.v1+cell"]
    assert titled["title"] == "A titled cell"
    assert titled["showTitle"] is True
    back = from_jupyter(to_jupyter(notebook, "demo"))
    assert back == notebook
    assert back.cell_languages() == notebook.cell_languages()
    assert render_source(back) == render_source(notebook)


def test_jupyter_export_is_valid_nbformat() -> None:
    import nbformat

    for language in Language:
        nbformat.validate(nbformat.reads(to_jupyter(sample(language), "n"), as_version=4))


def test_plain_jupyter_notebook_imports() -> None:
    document = {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {"kernelspec": {"name": "ir", "language": "R"}},
        "cells": [
            {"cell_type": "markdown", "id": "a", "metadata": {}, "source": ["# R here"]},
            {
                "cell_type": "code",
                "id": "b",
                "metadata": {},
                "execution_count": None,
                "outputs": [],
                "source": "x <- 1",
            },
        ],
    }
    notebook = from_jupyter(json.dumps(document))
    assert notebook.language == Language.R
    assert notebook.cells == (Cell("%md\n# R here"), Cell("x <- 1"))


def test_jupyter_language_falls_back_to_default_then_python() -> None:
    document = json.dumps({"nbformat": 4, "nbformat_minor": 0, "metadata": {}, "cells": []})
    assert from_jupyter(document).language == Language.PYTHON
    assert from_jupyter(document, Language.SCALA).language == Language.SCALA
    assert from_jupyter(document).cells == (Cell(""),)


def test_nbformat_v3_is_upgraded() -> None:
    document = {
        "nbformat": 3,
        "nbformat_minor": 0,
        "metadata": {"name": "old"},
        "worksheets": [
            {
                "cells": [
                    {"cell_type": "markdown", "metadata": {}, "source": "# Old"},
                    {
                        "cell_type": "code",
                        "input": "print(3)",
                        "language": "python",
                        "metadata": {},
                        "outputs": [],
                    },
                ]
            }
        ],
    }
    notebook = from_jupyter(json.dumps(document))
    assert notebook.cells == (Cell("%md\n# Old"), Cell("print(3)"))


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[]",
        '{"cells": []}',
        '{"nbformat": 5, "cells": []}',
        '{"nbformat": 4, "cells": {}}',
        '{"nbformat": 4, "cells": [1]}',
        '{"nbformat": 4, "cells": [{"cell_type": "code", "source": 7}]}',
    ],
)
def test_bad_jupyter_is_invalid_parameter(text: str) -> None:
    with pytest.raises(InvalidParameterValue):
        from_jupyter(text)


@pytest.mark.parametrize("language", list(Language))
def test_dbc_model_round_trip(language: Language) -> None:
    notebook = sample(language)
    model = to_dbc_model(notebook, "demo", 42)
    assert model["version"] == "NotebookV1"
    assert model["language"] == language.value.lower()
    assert [c["command"] for c in model["commands"]] == [c.command for c in notebook.cells]
    assert from_dbc_model(json.loads(json.dumps(model))) == notebook


def test_dbc_model_orders_by_position_and_rejects_garbage() -> None:
    model = {
        "language": "python",
        "commands": [{"command": "b", "position": 2.0}, {"command": "a", "position": 1}],
    }
    assert from_dbc_model(model).cells == (Cell("a"), Cell("b"))
    for bad in ({"commands": []}, {"language": "cobol", "commands": []}, [], {"language": "sql"}):
        with pytest.raises(InvalidParameterValue):
            from_dbc_model(bad)


@pytest.mark.parametrize("language", list(Language))
def test_html_export_embeds_the_model_and_escapes_text(language: Language) -> None:
    notebook = Notebook(
        language=language,
        cells=(
            Cell("%md\n# Head <script>alert(1)</script>\n[x](javascript:alert(1))"),
            Cell("print('<b>')", title="<i>t</i>"),
        ),
    )
    page = to_html(notebook, "demo <nb>")
    assert page.startswith("<!DOCTYPE html>")
    assert "__DATABRICKS_NOTEBOOK_MODEL = '" in page
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;" in page
    assert 'href="javascript' not in page
    assert "<i>t</i>" not in page
    assert from_html(page) == notebook


def test_html_markdown_renders_basic_blocks() -> None:
    notebook = Notebook(
        language=Language.PYTHON,
        cells=(
            Cell("%md\n## Sub\n- one\n- two\n\n```\ncode <x>\n```\n**b** `c` [l](https://e.org)"),
        ),
    )
    page = to_html(notebook, "n")
    for fragment in (
        "<h2>Sub</h2>",
        "<li>one</li>",
        "<pre><code>code &lt;x&gt;</code></pre>",
        "<strong>b</strong>",
        "<code>c</code>",
        '<a href="https://e.org">l</a>',
    ):
        assert fragment in page


@pytest.mark.parametrize(
    "page",
    [
        "<html>no model</html>",
        "<script>var __DATABRICKS_NOTEBOOK_MODEL = 'not*base64';</script>",
        "<script>var __DATABRICKS_NOTEBOOK_MODEL = 'bm90IGpzb24=';</script>",
    ],
)
def test_html_without_a_valid_model_is_refused(page: str) -> None:
    with pytest.raises(InvalidParameterValue):
        from_html(page)


def test_zip_round_trip_and_detection() -> None:
    data = write_zip([("a/b.py", b"x"), ("c.sql", b"y")])
    assert is_zip(data)
    assert not is_zip(b"# Databricks notebook source\n")
    assert read_zip(data, max_total=100) == [("a/b.py", b"x"), ("c.sql", b"y")]


@pytest.mark.parametrize("name", ["../evil.py", "/abs.py", "a/../../b.py", "a\\b.py", "a//b.py"])
def test_zip_entry_names_are_confined(name: str) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(name, b"x")
    with pytest.raises(InvalidParameterValue):
        read_zip(buffer.getvalue(), max_total=100)


def test_zip_bomb_and_garbage_are_refused() -> None:
    bomb = write_zip([("big.py", b"0" * 10_000)])
    assert len(bomb) < 1_000
    with pytest.raises(InvalidParameterValue):
        read_zip(bomb, max_total=5_000)
    with pytest.raises(InvalidParameterValue):
        read_zip(b"PK\x03\x04garbage", max_total=100)
