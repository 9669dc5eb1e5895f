"""Catalog SQL in a context: the statements Spark cannot run on Delta tables over delta-rs
(DDL, DML, SHOW/DESCRIBE, time travel) are recognised here and executed through the catalog
API, the `delta` source and delta-rs; catalog table names in any other statement become
temporary views over `spark.read.format("delta").load(location)`, and the statement then runs
in Spark unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kiln.driver.delta.client import analysis_error, table_not_found

__all__ = ["Token", "route", "table_references", "tokenize"]

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+|--[^\n]*|/\*.*?\*/)
  | (?P<str>'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.)*")
  | (?P<qid>`(?:[^`]|``)+`)
  | (?P<num>\d+(?:\.\d*)?(?:[eE][+-]?\d+)?[LlDdSsYy]?)
  | (?P<word>[A-Za-z_][A-Za-z0-9_$]*)
  | (?P<op>.)
    """,
    re.VERBOSE | re.DOTALL,
)


@dataclass(frozen=True)
class Token:
    """One lexical token of a statement."""

    kind: str
    text: str
    start: int
    end: int

    @property
    def upper(self) -> str:
        """The text upper-cased (keywords)."""
        return self.text.upper()

    @property
    def ident(self) -> str | None:
        """The identifier this token names, or None."""
        if self.kind == "word":
            return self.text.lower()
        if self.kind == "qid":
            return self.text[1:-1].replace("``", "`").lower()
        return None


def tokenize(text: str) -> list[Token]:
    """The statement's tokens without whitespace and comments."""
    return [
        Token(m.lastgroup or "op", m.group(), m.start(), m.end())
        for m in _TOKEN.finditer(text)
        if m.lastgroup != "ws"
    ]


def _name_at(tokens: Sequence[Token], i: int) -> tuple[list[str], int]:
    """A dotted name starting at token i: its parts and the index after it."""
    parts: list[str] = []
    while i < len(tokens) and tokens[i].ident is not None:
        parts.append(str(tokens[i].ident))
        if i + 1 < len(tokens) and tokens[i + 1].text == "." and i + 2 < len(tokens):
            i += 2
            continue
        i += 1
        break
    return parts, i


def _string(token: Token) -> str:
    body = token.text[1:-1]
    return body.replace("''", "'").replace("\\'", "'")


@dataclass
class Reference:
    """A table name in a FROM or JOIN clause, with its time travel."""

    parts: list[str]
    start: int  # token index
    end: int  # token index after the name (and its time travel)
    version: int | None = None
    timestamp: str | None = None


_TABLE_CONTEXT = {"FROM", "JOIN"}
_NOT_TABLE = {"SELECT", "VALUES", "LATERAL", "("}


def table_references(tokens: Sequence[Token]) -> list[Reference]:
    """Table names read by a query (after FROM/JOIN, comma-separated lists included)."""
    ctes = {
        str(tokens[i].ident)
        for i in range(len(tokens) - 2)
        if tokens[i].ident is not None and tokens[i + 1].upper == "AS" and tokens[i + 2].text == "("
    }
    refs: list[Reference] = []
    i = 0
    while i < len(tokens):
        if tokens[i].upper not in _TABLE_CONTEXT:
            i += 1
            continue
        i += 1
        while i < len(tokens):
            if tokens[i].text == "(" or tokens[i].upper in _NOT_TABLE:
                break
            parts, after = _name_at(tokens, i)
            if not parts or (after < len(tokens) and tokens[after].text == "("):
                break  # a table-valued function
            ref = Reference(parts, i, after)
            _time_travel(tokens, ref)
            if not (len(parts) == 1 and parts[0] in ctes):
                refs.append(ref)
            i = ref.end
            # An alias, then maybe `, next_table`.
            if i < len(tokens) and tokens[i].upper == "AS":
                i += 1
            if (
                i < len(tokens)
                and tokens[i].kind in ("word", "qid")
                and tokens[i].upper not in (_CLAUSE_WORDS)
            ):
                i += 1
            if i < len(tokens) and tokens[i].text == ",":
                i += 1
                continue
            break
    return refs


_CLAUSE_WORDS = {
    "WHERE", "GROUP", "ORDER", "LIMIT", "JOIN", "INNER", "LEFT", "RIGHT", "FULL", "CROSS",
    "ON", "USING", "UNION", "EXCEPT", "INTERSECT", "HAVING", "WINDOW", "NATURAL", "SEMI",
    "ANTI", "OUTER", "CLUSTER", "DISTRIBUTE", "SORT", "LATERAL", "PIVOT", "UNPIVOT",
    "TABLESAMPLE", "VERSION", "TIMESTAMP", "SET", "WHEN", "OFFSET", "QUALIFY",
}  # fmt: skip


def _time_travel(tokens: Sequence[Token], ref: Reference) -> None:
    i = ref.end
    # `t@v3` shorthand
    if i + 1 < len(tokens) and tokens[i].text == "@":
        word = tokens[i + 1].text
        if word.lower().startswith("v") and word[1:].isdigit():
            ref.version, ref.end = int(word[1:]), i + 2
        return
    upper = [t.upper for t in tokens[i : i + 4]]
    if len(upper) >= 4 and upper[1:3] == ["AS", "OF"] and upper[0] in ("VERSION", "TIMESTAMP"):
        value = tokens[i + 3]
        if upper[0] == "VERSION":
            text = value.text.strip("'\"")
            if not text.isdigit():
                raise analysis_error(
                    "INVALID_TIME_TRAVEL_SPEC", f"Invalid version {value.text}.", "42K0E"
                )
            ref.version = int(text)
        else:
            ref.timestamp = _string(value) if value.kind == "str" else value.text
        ref.end = i + 4


def substitute(session: Any, text: str, tokens: Sequence[Token] | None = None) -> str:
    """The statement with each catalog table read replaced by a temporary view over it."""
    tokens = list(tokens if tokens is not None else tokenize(text))
    pieces: list[str] = []
    cursor = 0
    for ref in table_references(tokens):
        if len(ref.parts) < 3 and session.is_spark_name(ref.parts):
            if ref.version is not None or ref.timestamp is not None:
                raise analysis_error(
                    "UNSUPPORTED_FEATURE.TIME_TRAVEL",
                    "Time travel applies to Delta tables, not views.",
                    "0A000",
                )
            continue
        table = session.lookup(ref.parts)
        if table is None:
            if len(ref.parts) == 3 or ref.parts[0] in _known_catalogs(session):
                raise table_not_found(session.qualify(ref.parts))
            continue  # Spark's own tables and its error for unknown names
        view = session.view_of(session.read(table, ref.version, ref.timestamp))
        pieces.append(text[cursor : tokens[ref.start].start])
        pieces.append(f"`{view}`")
        cursor = tokens[ref.end - 1].end
    pieces.append(text[cursor:])
    return "".join(pieces)


def _known_catalogs(session: Any) -> set[str]:
    return {c["name"] for c in session.client.catalogs()}


def _words(tokens: Sequence[Token], n: int) -> list[str]:
    return [t.upper for t in tokens[:n]]


def route(session: Any, text: str) -> Any:
    """Run one SQL statement with catalog names; its DataFrame."""
    tokens = tokenize(text)
    if not tokens:
        return session.spark_sql(text)
    head = _words(tokens, 4)
    first = head[0]
    if first == "CREATE" and "TABLE" in head and "VIEW" not in head:
        from kiln.driver.delta.sql_ddl import create_table

        return create_table(session, text, tokens)
    if first == "INSERT":
        from kiln.driver.delta.sql_ddl import insert

        return insert(session, text, tokens)
    if first == "DROP" and head[1:2] == ["TABLE"]:
        from kiln.driver.delta.sql_ddl import drop_table

        return drop_table(session, tokens)
    if (
        first == "SHOW"
        and len(head) > 1
        and head[1] in ("CATALOGS", "SCHEMAS", "DATABASES", "TABLES")
    ):
        from kiln.driver.delta.sql_ddl import show

        return show(session, tokens)
    if first in ("DESCRIBE", "DESC") and len(tokens) > 1:
        from kiln.driver.delta.sql_ddl import describe

        found = describe(session, tokens)
        if found is not None:
            return found
    if first == "USE":
        from kiln.driver.delta.sql_ddl import use

        return use(session, tokens)
    if first in ("UPDATE", "DELETE", "MERGE", "OPTIMIZE", "VACUUM", "RESTORE"):
        from kiln.driver.delta.sql_dml import run_dml

        return run_dml(session, text, tokens)
    return session.spark_sql(substitute(session, text, tokens))
