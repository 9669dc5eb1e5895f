"""SQL commands: split into statements (quotes and comments respected) and run through the
context's SparkSession; the last statement's result is the command's table."""

from __future__ import annotations

from typing import Any

__all__ = ["run_sql", "split_statements"]


def split_statements(text: str) -> list[str]:
    """The statements of a SQL text, without empty ones or trailing semicolons."""
    statements: list[str] = []
    current: list[str] = []
    i, n = 0, len(text)
    quote: str | None = None
    while i < n:
        ch = text[i]
        if quote is not None:
            current.append(ch)
            if ch == "\\" and quote != "`" and i + 1 < n:
                current.append(text[i + 1])
                i += 2
                continue
            if ch == quote:
                quote = None
            i += 1
            continue
        if ch in ("'", '"', "`"):
            quote = ch
            current.append(ch)
        elif ch == "-" and text.startswith("--", i):
            end = text.find("\n", i)
            i = n if end < 0 else end
            continue
        elif ch == "/" and text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = n if end < 0 else end + 2
            current.append(" ")
            continue
        elif ch == ";":
            statements.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    statements.append("".join(current))
    return [s.strip() for s in statements if s.strip()]


def run_sql(spark: Any, text: str) -> Any:
    """Run every statement; the DataFrame of the last one (None for an empty text)."""
    result = None
    for statement in split_statements(text):
        result = spark.sql(statement)
    return result
