"""Secret redaction: every secret value a context fetched is shown as `[REDACTED]` in its
outputs, as Databricks does. The REPL passes each output through `Redactor.redact_output`
before it leaves the context.
"""

from __future__ import annotations

import contextlib
import re
import threading
from typing import Any

__all__ = ["REDACTED", "Redactor"]

REDACTED = "[REDACTED]"
# Base64 images are not text a secret could be printed into (SVG is, and is redacted).
_BINARY_MIMES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})


class Redactor:
    """The secret values one context has seen, and their removal from text and outputs."""

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self._lock = threading.Lock()

    def add(self, value: str) -> None:
        """Redact `value` from now on (an empty value redacts nothing)."""
        if not value:
            return
        with self._lock:
            if value in self._values:
                return
            self._values.add(value)
            # Longest first, so a value containing another is redacted whole.
            ordered = sorted(self._values, key=len, reverse=True)
            self._pattern = re.compile("|".join(re.escape(v) for v in ordered))

    def add_bytes(self, value: bytes) -> None:
        """Redact a binary secret: its text form when it has one, and its `repr` body."""
        with contextlib.suppress(UnicodeDecodeError):
            self.add(value.decode("utf-8"))
        self.add(repr(value)[2:-1])

    def __len__(self) -> int:
        return len(self._values)

    def redact_text(self, text: str) -> str:
        """`text` with every known secret value replaced."""
        pattern = self._pattern
        if pattern is None or not text:
            return text
        return pattern.sub(REDACTED, text)

    def redact_value(self, value: Any) -> Any:
        """A JSON-like value (str, list, dict, scalars) with secrets replaced in its strings."""
        if self._pattern is None:
            return value
        if isinstance(value, str):
            return self.redact_text(value)
        if isinstance(value, list):
            return [self.redact_value(v) for v in value]
        if isinstance(value, tuple):
            return tuple(self.redact_value(v) for v in value)
        if isinstance(value, dict):
            return {k: self.redact_value(v) for k, v in value.items()}
        return value

    def redact_output(self, output: dict[str, Any]) -> dict[str, Any]:
        """An nbformat output dict (stream, display_data, execute_result, error) redacted."""
        if self._pattern is None:
            return output
        redacted = dict(output)
        if "text" in redacted:
            redacted["text"] = self.redact_value(redacted["text"])
        for key in ("ename", "evalue", "traceback"):
            if key in redacted:
                redacted[key] = self.redact_value(redacted[key])
        data = redacted.get("data")
        if isinstance(data, dict):
            redacted["data"] = {
                mime: body if mime in _BINARY_MIMES else self.redact_value(body)
                for mime, body in data.items()
            }
        return redacted
