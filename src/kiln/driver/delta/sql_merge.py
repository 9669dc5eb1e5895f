"""SQL MERGE INTO on a catalog table, run as Spark jobs with one commit (`merge.py`)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

from kiln.driver.delta.client import analysis_error, table_not_found
from kiln.driver.delta.sql_router import Token, _name_at

__all__ = ["merge"]


def _syntax(detail: str) -> Exception:
    return analysis_error(
        "PARSE_SYNTAX_ERROR",
        f"Syntax error in MERGE: {detail}. Kiln's MERGE takes WHEN [NOT] MATCHED [BY SOURCE] "
        "[AND cond] THEN UPDATE SET *|a = x | DELETE | INSERT *|(cols) VALUES (...); "
        "DeltaTable.forName(spark, name).merge(...) offers the same.",
        "42601",
    )


def _alias(tokens: Sequence[Token], i: int, stop: str) -> tuple[str | None, int]:
    if i < len(tokens) and tokens[i].upper == "AS":
        i += 1
    if i < len(tokens) and tokens[i].ident is not None and tokens[i].upper != stop:
        return str(tokens[i].ident), i + 1
    return None, i


def _close(tokens: Sequence[Token], i: int) -> int:
    depth = 0
    for j in range(i, len(tokens)):
        depth += tokens[j].text == "("
        depth -= tokens[j].text == ")"
        if depth == 0:
            return j
    raise _syntax("unbalanced parentheses")


def merge(session: Any, text: str, tokens: Sequence[Token]) -> Any:
    """MERGE INTO target [AS t] USING source [AS s] ON cond WHEN ... THEN ...."""
    from kiln.driver.delta.sql_dml import _split_top
    from kiln.driver.delta.tables import DeltaMergeBuilder, DeltaTable

    if len(tokens) < 2 or tokens[1].upper != "INTO":
        raise _syntax("expected MERGE INTO")
    parts, i = _name_at(tokens, 2)
    table = session.lookup(parts)
    if table is None:
        raise table_not_found(session.qualify(parts))
    target_alias, i = _alias(tokens, i, "USING")
    if i >= len(tokens) or tokens[i].upper != "USING":
        raise _syntax("expected USING")
    i += 1
    if tokens[i].text == "(":
        close = _close(tokens, i)
        source = session.sql(text[tokens[i].end : tokens[close].start])
        i = close + 1
    else:
        src_parts, i = _name_at(tokens, i)
        source = session.table(".".join(f"`{p}`" for p in src_parts))
    source_alias, i = _alias(tokens, i, "ON")
    if i >= len(tokens) or tokens[i].upper != "ON":
        raise _syntax("expected ON")
    whens = [k for k in range(i, len(tokens)) if tokens[k].upper == "WHEN"]
    if not whens:
        raise _syntax("expected WHEN clauses")
    condition = text[tokens[i].end : tokens[whens[0]].start].strip()
    target = DeltaTable(table.url, table.full_name, target_alias or "target")
    builder = DeltaMergeBuilder(target, source, condition, source_alias=source_alias or "source")
    bounds = [*whens, len(tokens)]
    for start, end in itertools.pairwise(bounds):
        clause = tokens[start:end]
        words = [t.upper for t in clause]
        then = words.index("THEN") if "THEN" in words else -1
        if then < 0:
            raise _syntax("expected THEN")
        head = words[1:then]
        cond = None
        if "AND" in head:
            at = start + 1 + head.index("AND")
            cond = text[tokens[at].end : tokens[start + then].start].strip()
            head = head[: head.index("AND")]
        action = words[then + 1 :]
        body = (
            text[tokens[start + then + 1].end : tokens[end - 1].end]
            if end - 1 > start + then
            else ""
        )
        if head == ["MATCHED"]:
            if action[:1] == ["DELETE"]:
                builder.whenMatchedDelete(cond)
            elif action[:3] == ["UPDATE", "SET", "*"]:
                builder.whenMatchedUpdateAll(cond)
            elif action[:2] == ["UPDATE", "SET"]:
                builder.whenMatchedUpdate(cond, _assignments(_split_top, body, "SET"))
            else:
                raise _syntax("WHEN MATCHED takes UPDATE or DELETE")
        elif head in (["NOT", "MATCHED"], ["NOT", "MATCHED", "BY", "TARGET"]):
            if action[:2] == ["INSERT", "*"]:
                builder.whenNotMatchedInsertAll(cond)
            elif action[:1] == ["INSERT"]:
                builder.whenNotMatchedInsert(cond, _insert_values(_split_top, clause, then, text))
            else:
                raise _syntax("WHEN NOT MATCHED takes INSERT")
        elif head == ["NOT", "MATCHED", "BY", "SOURCE"]:
            if action[:1] == ["DELETE"]:
                builder.whenNotMatchedBySourceDelete(cond)
            elif action[:2] == ["UPDATE", "SET"]:
                builder.whenNotMatchedBySourceUpdate(cond, _assignments(_split_top, body, "SET"))
            else:
                raise _syntax("WHEN NOT MATCHED BY SOURCE takes UPDATE or DELETE")
        else:
            raise _syntax(f"unexpected WHEN {' '.join(head)}")
    return builder.execute()


def _assignments(split: Any, body: str, keyword: str) -> dict[str, str]:
    text = body.strip()
    if text.upper().startswith(keyword):
        text = text[len(keyword) :]
    result: dict[str, str] = {}
    for item in split(text):
        column, _, expr = item.partition("=")
        name = column.strip().strip("`")
        result[name.split(".")[-1].strip("`")] = expr.strip()
    return result


def _insert_values(split: Any, clause: Sequence[Token], then: int, text: str) -> dict[str, str]:
    i = then + 2
    if i >= len(clause) or clause[i].text != "(":
        raise _syntax("INSERT needs (columns) VALUES (values)")
    close = _close(clause, i)
    columns = [c.strip().strip("`") for c in split(text[clause[i].end : clause[close].start])]
    if close + 2 >= len(clause) or clause[close + 1].upper != "VALUES":
        raise _syntax("INSERT needs VALUES")
    vclose = _close(clause, close + 2)
    values = split(text[clause[close + 2].end : clause[vclose].start])
    if len(values) != len(columns):
        raise _syntax("INSERT has a different number of columns and values")
    return dict(zip(columns, values, strict=True))
