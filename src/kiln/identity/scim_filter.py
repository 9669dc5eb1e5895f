"""A SCIM filter (RFC 7644 §3.4.2.2) subset compiled to a SQLAlchemy expression.

Supported: `attr op "value"` with eq, ne, co, sw, ew, gt, ge, lt, le, `attr pr`, joined by
`and` / `or` (and binds tighter), and parentheses. Attributes are mapped per resource.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sqlalchemy import and_, func, not_, or_
from sqlalchemy.sql.elements import ColumnElement

from kiln.errors import InvalidParameterValue

__all__ = ["compile_filter"]

_TOKEN = re.compile(
    r'\s*(?:(?P<lp>\()|(?P<rp>\))|(?P<str>"(?:[^"\\]|\\.)*")|(?P<word>[A-Za-z0-9_.:$\[\]-]+))'
)
_OPS = {"eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"}


def _tokens(text: str) -> list[str]:
    out: list[str] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if m is None:
            raise InvalidParameterValue(f"Invalid filter near {text[pos:]!r}")
        out.append(m.group(m.lastgroup or "word"))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, text: str, columns: Mapping[str, Any]) -> None:
        self.toks = _tokens(text)
        self.i = 0
        self.columns = {k.lower(): v for k, v in columns.items()}

    def peek(self) -> str | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> str:
        tok = self.peek()
        if tok is None:
            raise InvalidParameterValue("Invalid filter: unexpected end")
        self.i += 1
        return tok

    def parse(self) -> ColumnElement[bool]:
        expr = self.or_expr()
        if self.peek() is not None:
            raise InvalidParameterValue(f"Invalid filter: unexpected {self.peek()!r}")
        return expr

    def or_expr(self) -> ColumnElement[bool]:
        parts = [self.and_expr()]
        while (tok := self.peek()) is not None and tok.lower() == "or":
            self.take()
            parts.append(self.and_expr())
        return parts[0] if len(parts) == 1 else or_(*parts)

    def and_expr(self) -> ColumnElement[bool]:
        parts = [self.atom()]
        while (tok := self.peek()) is not None and tok.lower() == "and":
            self.take()
            parts.append(self.atom())
        return parts[0] if len(parts) == 1 else and_(*parts)

    def atom(self) -> ColumnElement[bool]:
        tok = self.take()
        if tok == "(":
            expr = self.or_expr()
            if self.take() != ")":
                raise InvalidParameterValue("Invalid filter: missing ')'")
            return expr
        if tok.lower() == "not":
            return not_(self.atom())
        column = self.columns.get(tok.lower())
        if column is None:
            raise InvalidParameterValue(f"Unsupported filter attribute: {tok!r}")
        op = self.take().lower()
        if op == "pr":
            return column.is_not(None)  # type: ignore[no-any-return]
        if op not in _OPS:
            raise InvalidParameterValue(f"Unsupported filter operator: {op!r}")
        raw = self.take()
        value: Any
        if raw.startswith('"'):
            value = raw[1:-1].replace('\\"', '"')
        elif raw.lower() in ("true", "false"):
            value = raw.lower() == "true"
        else:
            try:
                value = int(raw)
            except ValueError as exc:
                raise InvalidParameterValue(f"Invalid filter value: {raw!r}") from exc
        return _compare(column, op, value)


def _compare(column: Any, op: str, value: Any) -> ColumnElement[bool]:
    if isinstance(value, str) and op in ("eq", "ne", "co", "sw", "ew"):
        # SCIM string comparison is case-insensitive for userName and displayName.
        lowered = value.lower()
        lhs = func.lower(column)
        if op == "eq":
            return lhs == lowered
        if op == "ne":
            return lhs != lowered
        escaped = lowered.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = {"co": f"%{escaped}%", "sw": f"{escaped}%", "ew": f"%{escaped}"}[op]
        return lhs.like(pattern, escape="\\")
    ops = {
        "eq": column.__eq__,
        "ne": column.__ne__,
        "gt": column.__gt__,
        "ge": column.__ge__,
        "lt": column.__lt__,
        "le": column.__le__,
    }
    if op not in ops:
        raise InvalidParameterValue(f"Operator {op!r} needs a string value")
    return ops[op](value)  # type: ignore[no-any-return]


def compile_filter(text: str | None, columns: Mapping[str, Any]) -> ColumnElement[bool] | None:
    """The WHERE clause for a SCIM filter over `columns` (SCIM attribute → column)."""
    if text is None or not text.strip():
        return None
    return _Parser(text, columns).parse()
