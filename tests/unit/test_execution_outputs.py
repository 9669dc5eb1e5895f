"""The REPL's pure parts: output collection and truncation, cells, SQL statements, tables."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import sys
from collections import namedtuple
from typing import Any

import pytest

from kiln.driver.repl import TABLE_MIME, TRUNCATION_NOTE, OutputCollector, OutputLimits
from kiln.driver.repl.cells import compile_cell, format_exception, prepare_source
from kiln.driver.repl.display import json_value, mime_bundle
from kiln.driver.repl.executor import CANCELLED, ERROR, OK, Executor
from kiln.driver.repl.sql import split_statements


def test_streams_merge_in_order_with_rich_outputs() -> None:
    collector = OutputCollector(OutputLimits())
    collector.write("stdout", "a")
    collector.write("stdout", "b\n")
    collector.add({"output_type": "display_data", "data": {"text/plain": "t"}, "metadata": {}})
    collector.write("stdout", "c")
    collector.write("stderr", "e")
    assert [(o["output_type"], o.get("text")) for o in collector.finish()] == [
        ("stream", "ab\n"),
        ("display_data", None),
        ("stream", "c"),
        ("stream", "e"),
    ]


def test_text_is_capped_while_collected_and_says_so() -> None:
    collector = OutputCollector(OutputLimits(text_chars=10))
    for _ in range(1000):
        collector.write("stdout", "0123456789abc")
    outputs = collector.finish()
    assert collector.truncated
    assert outputs == [
        {"output_type": "stream", "name": "stdout", "text": f"0123456789\n{TRUNCATION_NOTE}\n"}
    ]


def test_a_huge_repr_is_capped() -> None:
    collector = OutputCollector(OutputLimits(text_chars=5))
    collector.add(
        {"output_type": "execute_result", "data": {"text/plain": "x" * 100}, "metadata": {}}
    )
    (out,) = collector.finish()
    assert out["data"]["text/plain"] == f"xxxxx\n{TRUNCATION_NOTE}" and collector.truncated


def test_rich_output_over_its_limit_is_replaced_by_a_note() -> None:
    collector = OutputCollector(OutputLimits(rich_bytes=100))
    collector.add({"output_type": "display_data", "data": {"image/png": "A" * 500}, "metadata": {}})
    (out,) = collector.finish()
    assert out["output_type"] == "stream" and "was skipped" in out["text"]


def test_outputs_are_redacted_at_the_end() -> None:
    def redact(output: dict[str, Any]) -> dict[str, Any]:
        return {**output, "text": output.get("text", "").replace("s3cr3t", "[REDACTED]")}

    collector = OutputCollector(OutputLimits(), redact)
    collector.write("stdout", "s3c")
    collector.write("stdout", "r3t\n")  # split across writes, still caught
    assert collector.finish()[0]["text"] == "[REDACTED]\n"


def test_limits_travel_as_json() -> None:
    limits = OutputLimits(text_chars=7)
    assert OutputLimits.of(limits.to_json()) == limits
    assert OutputLimits.of(None) == OutputLimits() and OutputLimits().text_chars == 50_000


def test_cells_are_dedented_and_split_at_a_last_expression() -> None:
    assert prepare_source("\n        a = 1\n        a\n") == "a = 1\na\n"
    assert prepare_source("a = 1\n    # indented comment") == "a = 1\n    # indented comment"
    cell = compile_cell("x = 2\nx * 3", "<command-1>")
    namespace: dict[str, Any] = {}
    assert cell.body is not None and cell.last is not None
    exec(cell.body, namespace)
    assert eval(cell.last, namespace) == 6
    assert compile_cell("y = 1", "<command-2>").last is None
    assert compile_cell("", "<command-3>").body is None
    with pytest.raises(SyntaxError):
        compile_cell("def (:", "<command-4>")


def test_tracebacks_show_the_cells_lines() -> None:
    cell = compile_cell("def f():\n    raise KeyError('k')\nf()", "<command-9>")
    assert cell.last is not None
    try:
        eval(cell.last, {"f": _defined(cell)})
    except KeyError as exc:
        ename, evalue, lines = format_exception(exc)
    assert (ename, evalue) == ("KeyError", "'k'")
    assert "<command-9>" in "".join(lines) and "raise KeyError('k')" in "".join(lines)


def _defined(cell: Any) -> Any:
    namespace: dict[str, Any] = {}
    exec(cell.body, namespace)
    return namespace["f"]


def test_sql_statements_split_outside_quotes_and_comments() -> None:
    text = "SELECT 'a;b' AS s; -- done; really\n/* c; */ SELECT `x;y`\n;;  "
    assert split_statements(text) == ["SELECT 'a;b' AS s", "SELECT `x;y`"]
    assert split_statements("SELECT 'it\\'s; fine'") == ["SELECT 'it\\'s; fine'"]
    assert split_statements("  ") == []


def test_cell_values_become_json() -> None:
    Point = namedtuple("Point", "x y")
    assert json_value(decimal.Decimal("1.50")) == "1.50"
    assert json_value(dt.date(2024, 1, 2)) == "2024-01-02"
    assert json_value(b"\x00\x01") == "AAE="
    assert json_value(float("nan")) == "nan"
    assert json_value(Point(1, [2, {3: 4}])) == [1, [2, {"3": 4}]]


def test_rows_of_records_display_as_a_table() -> None:
    File = namedtuple("File", "path size")
    bundle = mime_bundle([File("a", 1), File("b", 2)], OutputLimits(table_rows=1))
    table = bundle[TABLE_MIME]
    assert [(f["name"], json.loads(f["type"])) for f in table["schema"]] == [
        ("path", "string"),
        ("size", "long"),
    ]
    assert table["data"] == [["a", 1]] and table["truncated"] is True
    assert "<table>" in bundle["text/html"] and "| path |" in bundle["text/plain"]
    dicts = mime_bundle([{"k": True}], OutputLimits())[TABLE_MIME]
    assert dicts["data"] == [[True]] and json.loads(dicts["schema"][0]["type"]) == "boolean"
    assert mime_bundle([1, 2], OutputLimits()) == {"text/plain": "[1, 2]"}
    assert mime_bundle([{"k": 1}], OutputLimits(), tables=False) == {"text/plain": "[{'k': 1}]"}


def test_the_executor_runs_cells_like_a_notebook(monkeypatch: pytest.MonkeyPatch) -> None:
    namespace: dict[str, Any] = {"__builtins__": __builtins__}
    executor = Executor(namespace, OutputLimits())
    namespace["executor"] = executor
    monkeypatch.setattr(sys, "stdout", sys.stdout)
    monkeypatch.setattr(sys, "stderr", sys.stderr)
    executor.install_streams()
    first = executor.run("x = 20\nprint('set')\nx + 1")
    assert first.status == OK
    assert [o["output_type"] for o in first.outputs] == ["stream", "execute_result"]
    assert first.outputs[1]["data"] == {"text/plain": "21"}
    assert executor.run("'text'").outputs[0]["data"] == {"text/plain": "'text'"}
    failed = executor.run("x / 0")
    assert failed.status == ERROR and failed.outputs[-1]["ename"] == "ZeroDivisionError"
    assert executor.run("raise KeyboardInterrupt").status == ERROR  # the user's own
    # What the SIGINT handler of a cancel does: flag it, then interrupt.
    cancelled = executor.run("executor.cancel_requested = True\nraise KeyboardInterrupt")
    assert cancelled.status == CANCELLED and executor.interrupted
    assert executor.run("x").status == OK and not executor.cancel_requested
    sql = executor.run("SELECT 1", "sql")
    assert sql.status == ERROR and "SparkSession" in sql.outputs[-1]["evalue"]
