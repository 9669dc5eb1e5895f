"""A notebook run's record, kept as an nbformat 4 notebook with outputs.

Every cell of the notebook is there (cells the run never reached have no outputs); a `%run`
cell holds the outputs of the notebook it inlined; the outputs that carry data for the runner
(exit value, task values, restart) are taken out, an exit leaving "Notebook exited: ...".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kiln.driver.dbutils.binding import EXIT_MIME, RESTART_MIME, TASK_VALUE_MIME
from kiln.driver.notebook.source import NotebookSource

__all__ = ["RecordedCell", "RunRecord", "clean_output"]

_DATABRICKS_NOTEBOOK = "application/vnd.databricks.v1+notebook"
_DATABRICKS_CELL = "application/vnd.databricks.v1+cell"
_RUNNER_MIMES = frozenset({EXIT_MIME, TASK_VALUE_MIME, RESTART_MIME})


def _text(value: Any) -> str:
    if isinstance(value, list):
        return "".join(str(v) for v in value)
    return value if isinstance(value, str) else str(value)


def clean_output(output: Any, execution_count: int | None) -> dict[str, Any] | None:
    """A valid nbformat 4 output from a REPL output dict, or None to leave it out."""
    if not isinstance(output, dict):
        return None
    kind = output.get("output_type")
    if kind == "stream":
        name = output.get("name")
        return {
            "output_type": "stream",
            "name": name if name in ("stdout", "stderr") else "stdout",
            "text": _text(output.get("text", "")),
        }
    if kind in ("display_data", "execute_result"):
        data = output.get("data")
        bundle = {
            str(mime): body
            for mime, body in (data.items() if isinstance(data, dict) else ())
            if mime not in _RUNNER_MIMES
        }
        if not any(body not in ("", None) for body in bundle.values()):
            return None
        metadata = output.get("metadata")
        cleaned = {
            "output_type": kind,
            "data": bundle,
            "metadata": metadata if isinstance(metadata, dict) else {},
        }
        if kind == "execute_result":
            cleaned["execution_count"] = execution_count
        return cleaned
    if kind == "error":
        trace = output.get("traceback")
        return {
            "output_type": "error",
            "ename": _text(output.get("ename", "Error")),
            "evalue": _text(output.get("evalue", "")),
            "traceback": [_text(t) for t in trace] if isinstance(trace, list) else [],
        }
    return None


def _lines(text: str) -> list[str]:
    return text.splitlines(keepends=True)


@dataclass
class RecordedCell:
    """One cell of the run's notebook and what it printed."""

    source: str
    title: str = ""
    markdown: bool = False
    outputs: list[dict[str, Any]] = field(default_factory=list)
    execution_count: int | None = None

    def add(self, outputs: list[dict[str, Any]]) -> None:
        """Append outputs, merging a stream into the previous one of the same name."""
        for output in outputs:
            last = self.outputs[-1] if self.outputs else None
            if (
                output["output_type"] == "stream"
                and last is not None
                and last["output_type"] == "stream"
                and last["name"] == output["name"]
            ):
                last["text"] += output["text"]
            else:
                self.outputs.append(output)

    def to_json(self) -> dict[str, Any]:
        """The cell as nbformat 4 JSON."""
        metadata = {
            _DATABRICKS_CELL: {"showTitle": bool(self.title), "title": self.title},
        }
        if self.markdown:
            return {"cell_type": "markdown", "metadata": metadata, "source": _lines(self.source)}
        outputs = []
        for output in self.outputs:
            if output["output_type"] == "stream":
                output = {**output, "text": _lines(output["text"])}
            outputs.append(output)
        return {
            "cell_type": "code",
            "execution_count": self.execution_count,
            "metadata": metadata,
            "outputs": outputs,
            "source": _lines(self.source),
        }


class RunRecord:
    """The notebook of one run as it fills with outputs."""

    def __init__(self, source: NotebookSource, markdown: list[str | None]) -> None:
        """`markdown[i]` is the text of cell i when it is a `%md` cell, else None."""
        self.name = source.name
        self.language = source.language
        self.cells = [
            RecordedCell(
                source=md if md is not None else cell.command,
                title=cell.title,
                markdown=md is not None,
            )
            for cell, md in zip(source.cells, markdown, strict=True)
        ]
        self.widgets: dict[str, dict[str, Any]] = {}

    def to_ipynb(self) -> dict[str, Any]:
        """The run's notebook (nbformat 4.4 JSON object)."""
        return {
            "cells": [cell.to_json() for cell in self.cells],
            "metadata": {
                _DATABRICKS_NOTEBOOK: {
                    "language": self.language,
                    "notebookName": self.name,
                    "widgets": self.widgets,
                },
                "language_info": {"name": self.language},
            },
            "nbformat": 4,
            "nbformat_minor": 4,
        }
