"""UPDATE, DELETE, MERGE, OPTIMIZE, VACUUM and RESTORE on catalog tables, one commit each,
made by the driver: UPDATE, DELETE and MERGE run as Spark jobs (`dml`, `merge`) and return
Databricks' metrics rows; OPTIMIZE, VACUUM and RESTORE run on the driver with delta-rs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kiln.driver.delta.client import analysis_error, table_not_found
from kiln.driver.delta.sql_router import Token, _name_at, _string

__all__ = ["run_dml"]


def _table(session: Any, tokens: Sequence[Token], i: int) -> tuple[Any, int]:
    parts, after = _name_at(tokens, i)
    if not parts:
        raise analysis_error("PARSE_SYNTAX_ERROR", "Syntax error: expected a table name.", "42601")
    table = session.lookup(parts)
    if table is None:
        raise table_not_found(session.qualify(parts))
    return table, after


def _rest(text: str, tokens: Sequence[Token], i: int) -> str:
    return text[tokens[i].start :] if i < len(tokens) else ""


def _split_top(text: str) -> list[str]:
    from kiln.driver.delta.sql_router import tokenize

    parts, depth, start = [], 0, 0
    for token in tokenize(text):
        if token.text == "(":
            depth += 1
        elif token.text == ")":
            depth -= 1
        elif token.text == "," and depth == 0:
            parts.append(text[start : token.start].strip())
            start = token.end
    parts.append(text[start:].strip())
    return [p for p in parts if p]


def run_dml(session: Any, text: str, tokens: Sequence[Token]) -> Any:
    """Run one DML or maintenance statement on a catalog table."""
    from kiln.driver.delta.tables import DeltaTable

    first = tokens[0].upper
    if first == "DELETE":
        if len(tokens) < 3 or tokens[1].upper != "FROM":
            return session.spark_sql(text)
        table, i = _table(session, tokens, 2)
        if i < len(tokens) and tokens[i].ident is not None and tokens[i].upper != "WHERE":
            raise _aliases_unsupported(
                "DELETE", "DeltaTable.forName(spark, name).delete(condition)"
            )
        condition = None
        if i < len(tokens) and tokens[i].upper == "WHERE":
            condition = _rest(text, tokens, i + 1)
        deleted = DeltaTable(table.url, table.full_name)._delete(condition)
        return _affected(session, deleted)
    if first == "UPDATE":
        table, i = _table(session, tokens, 1)
        if i >= len(tokens) or tokens[i].upper != "SET":
            raise _aliases_unsupported("UPDATE", "DeltaTable.forName(spark, name).update(...)")
        where = next((k for k in range(i, len(tokens)) if tokens[k].upper == "WHERE"), None)
        end = tokens[where].start if where is not None else len(text)
        assignments: dict[str, str] = {}
        for item in _split_top(text[tokens[i].end : end]):
            column, _, expr = item.partition("=")
            assignments[column.strip().strip("`")] = expr.strip()
        condition = _rest(text, tokens, where + 1) if where is not None else None
        updated = DeltaTable(table.url, table.full_name)._update(condition, assignments)
        return _affected(session, updated)
    if first == "OPTIMIZE":
        table, i = _table(session, tokens, 1)
        builder = DeltaTable(table.url, table.full_name).optimize()
        if i < len(tokens) and tokens[i].upper == "WHERE":
            builder = builder.where(_rest(text, tokens, i + 1))
            i = len(tokens)
        if i < len(tokens) and tokens[i].upper == "ZORDER":
            close = next(k for k in range(i, len(tokens)) if tokens[k].text == ")")
            cols = [str(t.ident) for t in tokens[i + 3 : close] if t.ident is not None]
            return builder.executeZOrderBy(*cols)
        return builder.executeCompaction()
    if first == "VACUUM":
        table, i = _table(session, tokens, 1)
        hours = None
        if i + 1 < len(tokens) and tokens[i].upper == "RETAIN":
            hours = float(tokens[i + 1].text)
        return DeltaTable(table.url, table.full_name).vacuum(hours)
    if first == "RESTORE":
        i = 2 if len(tokens) > 1 and tokens[1].upper == "TABLE" else 1
        table, i = _table(session, tokens, i)
        words = [t.upper for t in tokens[i : i + 4]]
        if words[:1] == ["TO"]:
            words, i = words[1:], i + 1
        if len(words) >= 3 and words[1:3] == ["AS", "OF"] and i + 3 < len(tokens):
            value = tokens[i + 3]
            if words[0] == "VERSION":
                return DeltaTable(table.url, table.full_name).restoreToVersion(int(value.text))
            if words[0] == "TIMESTAMP":
                stamp = _string(value) if value.kind == "str" else value.text
                return DeltaTable(table.url, table.full_name).restoreToTimestamp(stamp)
        raise analysis_error(
            "PARSE_SYNTAX_ERROR",
            "Syntax error: RESTORE TABLE name TO VERSION AS OF n | TIMESTAMP AS OF 'ts'.",
            "42601",
        )
    if first == "MERGE":
        from kiln.driver.delta.sql_merge import merge

        return merge(session, text, tokens)
    return session.spark_sql(text)


def _affected(session: Any, rows: int) -> Any:
    # What Databricks' UPDATE and DELETE return.
    return session.spark.createDataFrame([(rows,)], "num_affected_rows bigint")


def _aliases_unsupported(statement: str, call: str) -> Exception:
    return analysis_error(
        "UNSUPPORTED_FEATURE",
        f"This form of {statement} is not supported by Kiln's SQL; use {call} instead.",
        "0A000",
    )
