"""A command's outputs as nbformat (ipynb) output dicts, collected within Databricks' limits.

The dicts are the REPL's common currency: `stream` (stdout/stderr text), `display_data` and
`execute_result` (mime bundles), `error` (ename, evalue, traceback). Notebook runs keep them
as they are; the Command Execution API turns them into one 1.2 result at the edge.

Text is capped while it is collected (a command printing megabytes never holds them in
memory) and says so at the end; a rich output larger than the rich-output limit is replaced
by a note. Pure code: no Spark, no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "TABLE_MIME",
    "TRUNCATION_NOTE",
    "OutputCollector",
    "OutputLimits",
    "display_data",
    "error_output",
    "execute_result",
    "stream",
]

# Kiln's table bundle: {"schema": [...], "data": [[...]], "truncated": bool} (Databricks' shapes).
TABLE_MIME = "application/vnd.kiln.table+json"
TRUNCATION_NOTE = "*** WARNING: max output size exceeded, skipping output. ***"


@dataclass(frozen=True, slots=True)
class OutputLimits:
    """How much one command may output (Databricks' documented defaults)."""

    # Text results: 50,000 characters (`spark.databricks.driver.maxReplOutputLength`).
    text_chars: int = 50_000
    # Non-tabular results (images, HTML): 20 MB per command.
    rich_bytes: int = 20 * 1024 * 1024
    # display() and SQL results: the first 1,000 rows, at most 2 MB of them.
    table_rows: int = 1000
    table_bytes: int = 2 * 1024 * 1024

    def to_json(self) -> dict[str, int]:
        """The form the driver sends the REPL."""
        return {
            "text_chars": self.text_chars,
            "rich_bytes": self.rich_bytes,
            "table_rows": self.table_rows,
            "table_bytes": self.table_bytes,
        }

    @classmethod
    def of(cls, data: dict[str, Any] | None) -> OutputLimits:
        """Read the driver's form (defaults for what is missing)."""
        data = data or {}
        fields = ("text_chars", "rich_bytes", "table_rows", "table_bytes")
        return cls(**{k: int(data[k]) for k in fields if isinstance(data.get(k), int)})


def stream(name: str, text: str) -> dict[str, Any]:
    """A stream output (`stdout` or `stderr`)."""
    return {"output_type": "stream", "name": name, "text": text}


def display_data(data: dict[str, Any], metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    """A display_data output with a mime bundle."""
    return {"output_type": "display_data", "data": data, "metadata": metadata or {}}


def execute_result(data: dict[str, Any], count: int) -> dict[str, Any]:
    """The value of a cell's last expression."""
    return {
        "output_type": "execute_result",
        "execution_count": count,
        "data": data,
        "metadata": {},
    }


def error_output(ename: str, evalue: str, traceback: list[str]) -> dict[str, Any]:
    """An error output."""
    return {"output_type": "error", "ename": ename, "evalue": evalue, "traceback": traceback}


def _size(data: dict[str, Any]) -> int:
    return len(json.dumps(data, separators=(",", ":"), default=str))


class OutputCollector:
    """Collects one command's outputs in order, within its limits."""

    def __init__(
        self,
        limits: OutputLimits,
        redact: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> None:
        self.limits = limits
        self.redact = redact
        self.outputs: list[dict[str, Any]] = []
        self.text_chars = 0
        self.rich_bytes = 0
        self.skipped_chars = 0
        self.truncated = False

    def write(self, name: str, text: str) -> None:
        """Append stream text, merged with the previous output of the same stream."""
        if not text:
            return
        room = self.limits.text_chars - self.text_chars
        if room <= 0:
            self.skipped_chars += len(text)
            self.truncated = True
            return
        if len(text) > room:
            self.skipped_chars += len(text) - room
            self.truncated = True
            text = text[:room]
        self.text_chars += len(text)
        last = self.outputs[-1] if self.outputs else None
        if last is not None and last["output_type"] == "stream" and last["name"] == name:
            last["text"] += text
        else:
            self.outputs.append(stream(name, text))

    def add(self, output: dict[str, Any]) -> None:
        """Append a display_data, execute_result or error output (streams go through write)."""
        if output.get("output_type") == "stream":
            self.write(str(output.get("name", "stdout")), str(output.get("text", "")))
            return
        data = output.get("data")
        if isinstance(data, dict):
            output = dict(output, data=self._cap_text(data))
            size = _size(output["data"])
            if self.rich_bytes + size > self.limits.rich_bytes:
                self.truncated = True
                mb = self.limits.rich_bytes // (1024 * 1024)
                self.write(
                    "stderr",
                    f"*** WARNING: an output of {size} bytes was skipped: "
                    f"a command's rich output is limited to {mb} MB. ***\n",
                )
                return
            self.rich_bytes += size
        self.outputs.append(output)

    def _cap_text(self, data: dict[str, Any]) -> dict[str, Any]:
        # A huge repr (a long list as the last expression) is text too.
        text = data.get("text/plain")
        limit = self.limits.text_chars
        if isinstance(text, str) and len(text) > limit:
            self.truncated = True
            data = dict(data, **{"text/plain": text[:limit] + f"\n{TRUNCATION_NOTE}"})
        return data

    def finish(self) -> list[dict[str, Any]]:
        """The outputs, redacted, with a note when text was skipped."""
        if self.skipped_chars:
            note = f"\n{TRUNCATION_NOTE}\n"
            last = self.outputs[-1] if self.outputs else None
            if last is not None and last["output_type"] == "stream":
                last["text"] += note
            else:
                self.outputs.append(stream("stdout", note))
            self.skipped_chars = 0
        if self.redact is None:
            return self.outputs
        return [self.redact(o) for o in self.outputs]
