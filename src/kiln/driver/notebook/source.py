"""A notebook as the runner reads it: the Workspace API's JUPYTER export (nbformat 4 JSON)
parsed into its language and cells (markdown cells become `%md` cells, as Databricks holds them).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

__all__ = ["NotebookError", "NotebookSource", "SourceCell", "parse_ipynb"]

_DATABRICKS_NOTEBOOK = "application/vnd.databricks.v1+notebook"
_DATABRICKS_CELL = "application/vnd.databricks.v1+cell"
_LANGUAGES = ("python", "sql", "scala", "r")


class NotebookError(Exception):
    """A notebook that cannot be run (missing, unreadable, a %run cycle...)."""


@dataclass(frozen=True, slots=True)
class SourceCell:
    """One cell: its command (magic line included) and title."""

    command: str
    title: str = ""
    markdown: bool = False


@dataclass(frozen=True, slots=True)
class NotebookSource:
    """A notebook's path, default language (lower case) and cells."""

    path: str
    language: str
    cells: tuple[SourceCell, ...]

    @property
    def name(self) -> str:
        """The notebook's name (the last path segment)."""
        return self.path.rstrip("/").rsplit("/", 1)[-1]


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "".join(value)
    raise NotebookError("Invalid notebook: a cell's source must be text.")


def _language(metadata: dict[str, Any]) -> str:
    candidates: list[Any] = []
    databricks = metadata.get(_DATABRICKS_NOTEBOOK)
    if isinstance(databricks, dict):
        candidates.append(databricks.get("language"))
    info = metadata.get("language_info")
    if isinstance(info, dict):
        candidates.append(info.get("name"))
    kernel = metadata.get("kernelspec")
    if isinstance(kernel, dict):
        candidates.append(kernel.get("language"))
    for candidate in candidates:
        if isinstance(candidate, str) and candidate.strip().lower() in _LANGUAGES:
            return candidate.strip().lower()
    return "python"


def parse_ipynb(path: str, text: str | bytes) -> NotebookSource:
    """Parse an nbformat 4 document (the Workspace API's JUPYTER export) into a source."""
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise NotebookError(f"Notebook {path} is not valid JSON: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("cells"), list):
        raise NotebookError(f"Notebook {path} is not an nbformat 4 notebook.")
    metadata = document.get("metadata")
    language = _language(metadata if isinstance(metadata, dict) else {})
    cells: list[SourceCell] = []
    for raw in document["cells"]:
        if not isinstance(raw, dict):
            raise NotebookError(f"Notebook {path} has a cell that is not an object.")
        source = _text(raw.get("source", ""))
        cell_meta = raw.get("metadata")
        info = cell_meta.get(_DATABRICKS_CELL) if isinstance(cell_meta, dict) else None
        title = info.get("title", "") if isinstance(info, dict) else ""
        title = title if isinstance(title, str) else ""
        if raw.get("cell_type") == "markdown":
            cells.append(SourceCell(f"%md\n{source}" if source else "%md", title, markdown=True))
        elif raw.get("cell_type") == "code":
            cells.append(SourceCell(source, title))
        # raw cells are not run
    return NotebookSource(path=path, language=language, cells=tuple(cells))
