"""Pure planning for UPDATE, DELETE and MERGE: which files a condition may touch (partition
values and statistics, from the simple conjuncts of a Spark SQL condition), how Spark's file
paths map back to the log's, and the metrics frames Databricks returns.

Nothing here starts Spark; `kiln.driver.delta.dml` runs the jobs, `dml_commit` commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any
from urllib.parse import unquote

from kiln.driver.delta.files import DataFile
from kiln.driver.delta.pruning import may_match
from kiln.driver.delta.sql_router import Token, _string, tokenize

__all__ = [
    "PlannedFile",
    "condition_filters",
    "path_key",
    "prune",
]

_OPS = {"=", "==", "<=>", "<", "<=", ">", ">=", "<>", "!="}
_FLIPPED = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}


@dataclass
class PlannedFile:
    """A snapshot file as the log names it (`path`, for its remove action) and as it is read."""

    path: str
    data: DataFile


def path_key(path: str) -> str:
    """One spelling of a data file's location, whether Spark (`_metadata.file_path`, URL-
    encoded) or the planner (`file:///…`, decoded) wrote it."""
    text = path
    if text.startswith("file:"):
        text = "/" + text[len("file:") :].lstrip("/")
    return text


def spark_path_key(path: str) -> str:
    """`path_key` of a path as Spark's `_metadata.file_path` gives it (URL-encoded)."""
    return path_key(unquote(path))


def _split_and(tokens: Sequence[Token]) -> list[list[Token]]:
    parts: list[list[Token]] = [[]]
    depth = 0
    between = False
    for token in tokens:
        if token.text == "(":
            depth += 1
        elif token.text == ")":
            depth -= 1
        if depth == 0 and token.upper == "BETWEEN":
            between = True
        if depth == 0 and token.upper == "AND" and not between:
            parts.append([])
            continue
        if depth == 0 and token.upper == "AND":
            between = False  # the AND of BETWEEN x AND y
        parts[-1].append(token)
    return [p for p in parts if p]


def _literal(tokens: Sequence[Token]) -> tuple[bool, Any]:
    """(True, value) when the tokens are one simple literal."""
    texts = [t.text for t in tokens]
    if len(tokens) == 1:
        token = tokens[0]
        if token.kind == "str" and token.text.startswith("'"):
            return True, _string(token)
        if token.kind == "num":
            return _number(token.text)
        if token.upper in ("TRUE", "FALSE"):
            return True, token.upper == "TRUE"
        return False, None
    if len(tokens) == 2 and texts[0] == "-" and tokens[1].kind == "num":
        found, value = _number(tokens[1].text)
        return found, -value if found else None
    if len(tokens) == 2 and tokens[0].upper == "DATE" and tokens[1].kind == "str":
        try:
            return True, date.fromisoformat(_string(tokens[1]))
        except ValueError:
            return False, None
    return False, None


def _number(text: str) -> tuple[bool, Any]:
    body = text.rstrip("LlDdSsYy")
    if text[-1:] in ("D", "d"):
        return True, float(body)
    try:
        return True, int(body)
    except ValueError:
        return True, float(body)


def _column(tokens: Sequence[Token], columns: dict[str, str]) -> str | None:
    # `c` or `alias.c`: the table's own column (a qualifier names the only table there is).
    idents = [t.ident for t in tokens]
    if len(tokens) == 1 and idents[0] is not None:
        return columns.get(idents[0])
    if len(tokens) == 3 and tokens[1].text == "." and idents[0] and idents[2]:
        return columns.get(idents[2])
    return None


def _conjunct(tokens: Sequence[Token], columns: dict[str, str]) -> Any | None:
    from pyspark.sql import datasource as ds

    words = [t.upper for t in tokens]
    if "OR" in words:
        return None
    if words[-2:] == ["IS", "NULL"] or words[-3:] == ["IS", "NOT", "NULL"]:
        negated = words[-2] == "NOT"
        name = _column(tokens[: len(tokens) - (3 if negated else 2)], columns)
        if name is None:
            return None
        return ds.IsNotNull((name,)) if negated else ds.IsNull((name,))
    if "IN" in words and tokens[-1].text == ")":
        at = words.index("IN")
        name = _column(tokens[:at], columns)
        if name is None or at + 1 >= len(tokens) or tokens[at + 1].text != "(":
            return None
        values = []
        for item in _split_commas(tokens[at + 2 : -1]):
            found, value = _literal(item)
            if not found:
                return None
            values.append(value)
        return ds.In((name,), tuple(values)) if values else None
    op, at, after = _operator(tokens)
    if op is None:
        return None
    left, right = tokens[:at], tokens[after:]
    name = _column(left, columns)
    found, value = _literal(right)
    if name is None or not found:
        name = _column(right, columns)
        found, value = _literal(left)
        op = _FLIPPED.get(op, op)
    if name is None or not found:
        return None
    if op in ("<>", "!="):
        return ds.Not(ds.EqualTo((name,), value))
    kinds = {
        "=": ds.EqualTo,
        "==": ds.EqualTo,
        "<=>": ds.EqualNullSafe,
        "<": ds.LessThan,
        "<=": ds.LessThanOrEqual,
        ">": ds.GreaterThan,
        ">=": ds.GreaterThanOrEqual,
    }
    return kinds[op]((name,), value)


def _operator(tokens: Sequence[Token]) -> tuple[str | None, int, int]:
    """The one comparison operator of a conjunct (the tokenizer splits `<=` into `<`, `=`):
    the operator, where it starts and the index after it; None when not exactly one."""
    marks = [i for i, t in enumerate(tokens) if t.kind == "op" and t.text in "<>=!"]
    if not marks or marks != list(range(marks[0], marks[-1] + 1)):
        return None, -1, -1
    op = "".join(tokens[i].text for i in marks)
    if op not in _OPS:
        return None, -1, -1
    return op, marks[0], marks[-1] + 1


def _split_commas(tokens: Sequence[Token]) -> list[list[Token]]:
    parts: list[list[Token]] = [[]]
    for token in tokens:
        if token.text == ",":
            parts.append([])
        else:
            parts[-1].append(token)
    return [p for p in parts if p]


def condition_filters(condition: str | None, columns: Sequence[str]) -> list[Any]:
    """The data source filters implied by a Spark SQL condition's simple top-level conjuncts
    (`c op literal`, `c IN (…)`, `c IS [NOT] NULL`); the rest of the condition is left to
    Spark. Every row matching the condition matches every returned filter."""
    if not condition:
        return []
    by_lower = {c.lower(): c for c in columns}
    tokens = tokenize(condition)
    if _top_level_or(tokens):
        return []  # `a OR b AND c`: no conjunct holds for every matching row
    filters = []
    for part in _split_and(tokens):
        # A parenthesised conjunct is taken apart only when it is the whole of it.
        while len(part) > 2 and part[0].text == "(" and part[-1].text == ")" and _wraps(part):
            part = part[1:-1]
        try:
            found = _conjunct(part, by_lower)
        except (ValueError, IndexError):
            found = None
        if found is not None:
            filters.append(found)
    return filters


def _top_level_or(tokens: Sequence[Token]) -> bool:
    depth = 0
    for token in tokens:
        depth += token.text == "("
        depth -= token.text == ")"
        if depth == 0 and token.upper == "OR":
            return True
    return False


def _wraps(tokens: Sequence[Token]) -> bool:
    depth = 0
    for i, token in enumerate(tokens):
        depth += token.text == "("
        depth -= token.text == ")"
        if depth == 0 and i < len(tokens) - 1:
            return False
    return True


def prune(
    files: Sequence[PlannedFile], filters: Sequence[Any], partition_columns: Sequence[str]
) -> list[PlannedFile]:
    """The files whose partition values and statistics do not rule out every filter."""
    return [f for f in files if all(may_match(f.data, flt, partition_columns) for flt in filters)]
