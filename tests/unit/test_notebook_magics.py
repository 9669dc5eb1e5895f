"""Cell magics, %run arguments, SQL statement splitting and SQL parameters (pure)."""

from __future__ import annotations

import pytest

from kiln.driver.notebook import CellCommand, MagicError, parse_cell, split_sql
from kiln.driver.notebook.commands import bind_code, cell_code, pop_code, push_code
from kiln.driver.notebook.incell import sql_parameters
from kiln.driver.notebook.magics import parse_run_arguments


@pytest.mark.parametrize(
    ("source", "language", "kind", "body"),
    [
        ("print(1)", "python", "python", "print(1)"),
        ("SELECT 1", "sql", "sql", "SELECT 1"),
        ("SELECT 1", "SQL", "sql", "SELECT 1"),
        ("%sql\nSELECT 1", "python", "sql", "SELECT 1"),
        ("%sql SELECT 1\nFROM t", "python", "sql", "SELECT 1\nFROM t"),
        ("%python\nx = 1", "sql", "python", "x = 1"),
        ("%md\n# Title\n\n  indented", "python", "md", "# Title\n\n  indented"),
        ("%md # Inline", "python", "md", "# Inline"),
        ("%md-sandbox\n<b>x</b>", "python", "md", "<b>x</b>"),
        ("%sh\nls -la\necho hi", "python", "sh", "ls -la\necho hi"),
        ("%sh ls /tmp", "python", "sh", "ls /tmp"),
        ("%fs ls /tmp", "python", "fs", "ls /tmp"),
        ("%pip install requests==2.0", "python", "pip", "install requests==2.0"),
        ("%run ./helper", "python", "run", "./helper"),
    ],
)
def test_parse_cell(source: str, language: str, kind: str, body: str) -> None:
    command = parse_cell(source, language)
    assert (command.kind, command.body) == (kind, body)


def test_run_magic_with_arguments() -> None:
    command = parse_cell('%run ../lib/helper $a="x y" $b=2 c=3', "python")
    assert command.target == "../lib/helper"
    assert command.arguments == {"a": "x y", "b": "2", "c": "3"}
    assert parse_run_arguments("/abs/path") == ("/abs/path", {})


@pytest.mark.parametrize(
    ("source", "language", "message"),
    [
        ("%scala\nval x = 1", "python", "Scala cells are not supported"),
        ("%r\nx <- 1", "python", "R cells are not supported"),
        ("x <- 1", "r", "R cells are not supported"),
        ("%conda install x", "python", "%conda is not supported"),
        ("%timeit x", "python", "Unknown magic %timeit"),
        ("%run", "python", "needs a notebook path"),
        ("%run ./a\nprint(1)", "python", "alone in its cell"),
        ("%run ./a $b", "python", "Malformed %run argument"),
        ('%run ./a $b="x', "python", "Malformed %run line"),
        ("print(1)", "cobol", "not supported"),
    ],
)
def test_bad_cells(source: str, language: str, message: str) -> None:
    with pytest.raises(MagicError, match=message):
        parse_cell(source, language)


def test_split_sql() -> None:
    text = """
    -- a comment; not a statement end
    CREATE TABLE t (s STRING);
    INSERT INTO t VALUES ('a;b'), ("c;d"), (`e;f`) /* ; */;
    ;
    -- only a comment
    SELECT * FROM t
    """
    statements = split_sql(text)
    assert len(statements) == 3
    assert statements[0].endswith("CREATE TABLE t (s STRING)")
    assert "'a;b'" in statements[1] and '"c;d"' in statements[1]
    assert statements[2].endswith("SELECT * FROM t")
    assert split_sql("SELECT 'it\\'s;'") == ["SELECT 'it\\'s;'"]
    assert split_sql("  ;  -- nothing\n") == []


def test_sql_parameters() -> None:
    values = {"table": "t1", "n": "5", "unused": "x"}
    query, args = sql_parameters("SELECT * FROM ${table} WHERE n > :n AND s = ':unused'", values)
    assert query == "SELECT * FROM t1 WHERE n > :n AND s = ':unused'"
    assert args == {"n": "5"}
    query, args = sql_parameters("SELECT a::int, ${missing} -- :n", values)
    assert query == "SELECT a::int, ${missing} -- :n" and args == {}


def test_cell_code_keeps_cell_text_inside_a_literal() -> None:
    tricky = "x'''\"\"\"); import os; os._exit(1) #"
    code = cell_code(CellCommand(kind="sql", body=tricky))
    assert code.startswith("__import__('kiln.driver.notebook.incell'")
    # The text travels as one repr literal: evaluating the argument gives it back exactly.
    literal = code[code.index("globals(), ") + len("globals(), ") : -1]
    assert eval(literal) == tricky
    assert cell_code(CellCommand(kind="python", body="x = 1")) == "x = 1"
    with pytest.raises(ValueError, match="not run as code"):
        cell_code(CellCommand(kind="md", body="# x"))
    for code in (push_code({"a": "1"}), pop_code()):
        compile(code, "<cell>", "eval")
    from kiln.driver.dbutils import RunBinding

    compile(bind_code(RunBinding("/nb", parameters={"q": "'\""})), "<cell>", "eval")
