"""Notebooks and their formats: Databricks SOURCE, Jupyter (.ipynb) and the DBC JSON model.

A notebook is a language and a list of cells; a cell is its command text exactly as Databricks
holds it, magic line included (`%md\\n# Title`, `%sql\\nSELECT 1`), plus an optional title. Every
format converts to and from this one model, so SOURCE → JUPYTER → SOURCE keeps each cell and
its language. Pure functions: callers run them in a thread (they may be CPU-heavy).
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

from kiln.errors import InvalidParameterValue
from kiln.workspace.enums import Language

__all__ = [
    "Cell",
    "Notebook",
    "from_dbc_model",
    "from_jupyter",
    "has_source_header",
    "markdown_text",
    "parse_source",
    "render_source",
    "to_dbc_model",
    "to_jupyter",
]

HEADER = "Databricks notebook source"
_MAGIC = re.compile(r"^%([A-Za-z][\w-]*)")
_NUID_NAMESPACE = uuid.UUID("0b6f0f52-51b6-4c1e-9a53-8c1f2a6d3e10")
_DATABRICKS_NOTEBOOK = "application/vnd.databricks.v1+notebook"
_DATABRICKS_CELL = "application/vnd.databricks.v1+cell"
# language_info names Jupyter kernels use; Databricks' own metadata uses lower case.
_JUPYTER_LANGUAGE_INFO = {
    Language.PYTHON: "python",
    Language.SQL: "sql",
    Language.SCALA: "scala",
    Language.R: "R",
}


@dataclass(frozen=True, slots=True)
class Cell:
    """One command: its text (magic line included) and its title."""

    command: str
    title: str = ""

    @property
    def magic(self) -> str | None:
        """The cell magic (`md`, `sql`, `pip`...) if the command starts with one."""
        match = _MAGIC.match(self.command)
        return match.group(1) if match else None

    def language(self, default: Language) -> str:
        """The language the cell runs in: its magic, else the notebook's (lower case)."""
        return self.magic or default.magic


@dataclass(frozen=True, slots=True)
class Notebook:
    """A notebook: its default language and its cells (never empty)."""

    language: Language
    cells: tuple[Cell, ...]

    def cell_languages(self) -> list[str]:
        """Each cell's language, in order (`md` for markdown cells)."""
        return [cell.language(self.language) for cell in self.cells]


def _one_line(title: str) -> str:
    return " ".join(title.splitlines()).strip()


# --- Databricks SOURCE format -----------------------------------------------------------------


def _separator(comment: str) -> str:
    return f"\n\n{comment} COMMAND ----------\n\n"


def _separator_pattern(comment: str) -> re.Pattern[str]:
    # One blank line each side belongs to the separator; more belong to the cells.
    c = re.escape(comment)
    return re.compile(rf"(?:\n?\n|\A){c} COMMAND -{{10}}[ \t]*(?:\n\n?|\Z)", re.MULTILINE)


def _render_cell(cell: Cell, comment: str) -> str:
    lines: list[str] = []
    title = _one_line(cell.title)
    if title:
        lines.append(f"{comment} DBTITLE 1,{title}")
    if cell.magic is not None:
        magic = f"{comment} MAGIC"
        lines.extend(f"{magic} {line}" if line else magic for line in cell.command.split("\n"))
    else:
        lines.append(cell.command)
    return "\n".join(lines)


def render_source(notebook: Notebook) -> str:
    """The notebook in Databricks' SOURCE format (a `.py`, `.sql`, `.scala` or `.r` export)."""
    comment = notebook.language.comment
    body = _separator(comment).join(_render_cell(c, comment) for c in notebook.cells)
    return f"{comment} {HEADER}\n{body}\n"


def has_source_header(text: str, language: Language) -> bool:
    """Whether `text` starts with this language's `Databricks notebook source` header line."""
    first = text.lstrip("\ufeff").split("\n", 1)[0].rstrip("\r").rstrip()
    return first == f"{language.comment} {HEADER}"


def _parse_cell(chunk: str, comment: str) -> Cell:
    lines = chunk.split("\n")
    title = ""
    heading = re.match(rf"^{re.escape(comment)} DBTITLE \d+,(.*)$", lines[0])
    if heading:
        title = heading.group(1).strip()
        lines = lines[1:]
    magic_line = re.compile(rf"^{re.escape(comment)} MAGIC(?: |$)")
    if lines and all(magic_line.match(line) for line in lines):
        command = "\n".join(magic_line.sub("", line, count=1) for line in lines)
        if _MAGIC.match(command):
            return Cell(command=command, title=title)
    return Cell(command="\n".join(lines), title=title)


def parse_source(text: str, language: Language) -> Notebook:
    """Parse Databricks SOURCE text; without the header line the text is plain code cells."""
    comment = language.comment
    text = text.lstrip("\ufeff").replace("\r\n", "\n")
    body = text
    if has_source_header(text, language):
        body = text.split("\n", 1)[1] if "\n" in text else ""
    if body.endswith("\n"):
        body = body[:-1]
    chunks = _separator_pattern(comment).split(body)
    return Notebook(language=language, cells=tuple(_parse_cell(c, comment) for c in chunks))


# --- Jupyter (.ipynb, nbformat 4) ---------------------------------------------------------------


def _nuid(name: str, index: int) -> str:
    # Stable across exports of the same notebook, as Databricks' persistent cell ids are.
    return str(uuid.uuid5(_NUID_NAMESPACE, f"{name}\x00{index}"))


def _source_lines(text: str) -> list[str]:
    return text.splitlines(keepends=True)


def markdown_text(command: str) -> str:
    """The markdown of a `%md` cell (the text after the magic)."""
    first, _, rest = command.partition("\n")
    inline = first[len("%md") :].strip()
    if inline:
        return f"{inline}\n{rest}" if rest else inline
    return rest


def to_jupyter(notebook: Notebook, name: str) -> str:
    """The notebook as nbformat 4 JSON with Databricks' notebook and cell metadata."""
    cells: list[dict[str, Any]] = []
    for index, cell in enumerate(notebook.cells):
        title = _one_line(cell.title)
        metadata = {
            _DATABRICKS_CELL: {
                "cellMetadata": {},
                "inputWidgets": {},
                "nuid": _nuid(name, index),
                "showTitle": bool(title),
                "title": title,
            }
        }
        if cell.magic == "md":
            source = markdown_text(cell.command)
            cells.append({"cell_type": "markdown", "metadata": metadata, "source": source})
        else:
            cells.append(
                {
                    "cell_type": "code",
                    "execution_count": 0,
                    "metadata": metadata,
                    "outputs": [],
                    "source": cell.command,
                }
            )
    for cell_json in cells:
        cell_json["source"] = _source_lines(cell_json["source"])
    language = notebook.language
    document = {
        "cells": cells,
        "metadata": {
            _DATABRICKS_NOTEBOOK: {
                "dashboards": [],
                "environmentMetadata": None,
                "language": language.magic,
                "notebookMetadata": {"pythonIndentUnit": 4},
                "notebookName": name,
                "widgets": {},
            },
            "language_info": {"name": _JUPYTER_LANGUAGE_INFO[language]},
        },
        "nbformat": 4,
        "nbformat_minor": 0,
    }
    # nbformat's own layout (one-space indent, sorted keys), so diffs against Jupyter stay small.
    return json.dumps(document, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def _upgrade_to_v4(text: str) -> dict[str, Any]:
    import nbformat  # slow to import; only old (v3 and earlier) notebooks need it

    try:
        upgraded = nbformat.reads(text, as_version=4)  # type: ignore[no-untyped-call]
    except Exception as exc:
        raise InvalidParameterValue(f"Invalid Jupyter notebook: {exc}") from exc
    document: dict[str, Any] = json.loads(nbformat.writes(upgraded))  # type: ignore[no-untyped-call]
    return document


def _text(value: Any, what: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "".join(value)
    raise InvalidParameterValue(f"Invalid Jupyter notebook: {what} must be a string or lines")


def _jupyter_language(metadata: dict[str, Any], default: Language | None) -> Language:
    databricks = metadata.get(_DATABRICKS_NOTEBOOK)
    candidates: list[Any] = []
    if isinstance(databricks, dict):
        candidates.append(databricks.get("language"))
    for key in ("language_info", "kernelspec"):
        section = metadata.get(key)
        if isinstance(section, dict):
            candidates.append(section.get("name" if key == "language_info" else "language"))
    for candidate in candidates:
        language = Language.from_name(candidate if isinstance(candidate, str) else None)
        if language is not None:
            return language
    return default or Language.PYTHON


def from_jupyter(text: str, default_language: Language | None = None) -> Notebook:
    """Parse an .ipynb document; markdown cells become `%md` cells, titles come back."""
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise InvalidParameterValue(f"Invalid Jupyter notebook: not JSON ({exc})") from exc
    if not isinstance(document, dict) or not isinstance(document.get("nbformat"), int):
        raise InvalidParameterValue("Invalid Jupyter notebook: missing 'nbformat'")
    if document["nbformat"] < 4:
        document = _upgrade_to_v4(text)
    elif document["nbformat"] > 4:
        raise InvalidParameterValue(f"Unsupported nbformat version {document['nbformat']}")
    raw_cells = document.get("cells", [])
    metadata = document.get("metadata") or {}
    if not isinstance(raw_cells, list) or not isinstance(metadata, dict):
        raise InvalidParameterValue("Invalid Jupyter notebook: 'cells' must be a list")
    cells: list[Cell] = []
    for position, raw in enumerate(raw_cells):
        if not isinstance(raw, dict):
            raise InvalidParameterValue(f"Invalid Jupyter notebook: cell {position} is not a map")
        source = _text(raw.get("source", ""), f"cell {position} source")
        cell_meta = raw.get("metadata") or {}
        info = cell_meta.get(_DATABRICKS_CELL) if isinstance(cell_meta, dict) else None
        title = ""
        if isinstance(info, dict) and isinstance(info.get("title"), str):
            title = info["title"]
        if raw.get("cell_type") == "markdown":
            command = f"%md\n{source}" if source else "%md"
        else:
            command = source
        cells.append(Cell(command=command, title=title))
    language = _jupyter_language(metadata, default_language)
    return Notebook(language=language, cells=tuple(cells) or (Cell(""),))


# --- The DBC JSON notebook model -----------------------------------------------------------------


def to_dbc_model(notebook: Notebook, name: str, orig_id: int) -> dict[str, Any]:
    """The notebook as Databricks' archive JSON model (`NotebookV1`)."""
    commands = []
    for index, cell in enumerate(notebook.cells):
        title = _one_line(cell.title)
        commands.append(
            {
                "version": "CommandV1",
                "origId": orig_id * 1000 + index + 1,
                "guid": _nuid(name, index),
                "subtype": "command",
                "commandType": "auto",
                "position": float(index + 1),
                "command": cell.command,
                "commandVersion": 0,
                "commandTitle": title,
                "showCommandTitle": bool(title),
                "hideCommandCode": False,
                "hideCommandResult": False,
                "results": None,
                "collapsed": False,
                "inputWidgets": {},
                "nuid": _nuid(name, index),
            }
        )
    return {
        "version": "NotebookV1",
        "origId": orig_id,
        "name": name,
        "language": notebook.language.magic,
        "commands": commands,
        "dashboards": [],
        "guid": _nuid(name, -1),
        "globalVars": {},
        "iPythonMetadata": None,
        "inputWidgets": {},
    }


def _position(command: dict[str, Any]) -> float:
    position = command.get("position")
    return float(position) if isinstance(position, int | float) else 0.0


def from_dbc_model(model: Any) -> Notebook:
    """Parse a `NotebookV1` JSON model (from a DBC archive or an HTML export)."""
    if not isinstance(model, dict) or not isinstance(model.get("commands"), list):
        raise InvalidParameterValue("Invalid notebook model: expected a map with 'commands'")
    language = Language.from_name(model.get("language"))
    if language is None:
        raise InvalidParameterValue(
            f"Invalid notebook model: bad language {model.get('language')!r}"
        )
    commands = [c for c in model["commands"] if isinstance(c, dict)]
    commands.sort(key=_position)
    cells = []
    for command in commands:
        text = command.get("command", "")
        title = command.get("commandTitle") or ""
        if not isinstance(text, str) or not isinstance(title, str):
            raise InvalidParameterValue("Invalid notebook model: 'command' must be a string")
        cells.append(Cell(command=text, title=title))
    return Notebook(language=language, cells=tuple(cells) or (Cell(""),))
