"""A notebook run's record exported as HTML: every cell with its outputs, and the notebook
model embedded as Databricks does, so the page imports back into the workspace.

User content never runs in the page: text is escaped, HTML outputs sit in iframes sandboxed
without scripts, images are data URLs, markdown goes through the safe renderer.
"""

from __future__ import annotations

import base64
import html
import json
import re
from typing import Any
from urllib.parse import quote

from kiln.driver.notebook import render_markdown
from kiln.driver.repl import TABLE_MIME
from kiln.workspace.notebook_formats import from_jupyter, to_dbc_model

__all__ = ["notebook_html"]

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_IMAGES = ("image/png", "image/jpeg", "image/gif")
_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2rem auto;
max-width:64rem;color:#1f2328;line-height:1.5}
.cell{border:1px solid #d0d7de;border-radius:6px;margin:1rem 0;padding:.75rem 1rem}
.cell h6.title{margin:0 0 .5rem;color:#57606a}
.count{float:right;font-size:.75rem;color:#57606a}
pre{background:#f6f8fa;padding:.75rem;border-radius:6px;overflow-x:auto;margin:.25rem 0}
.output pre{background:#fff;border:1px solid #eaeef2}
.output pre.error{background:#fff5f5;border-color:#ffc1c0;color:#82071e}
.output iframe{width:100%;border:0}
.output img{max-width:100%}
table.table{border-collapse:collapse;margin:.25rem 0;font-size:.875rem}
table.table th,table.table td{border:1px solid #d0d7de;padding:.25rem .5rem;text-align:left}
.note{color:#57606a;font-size:.75rem}
code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
""".strip()


def _text(value: Any) -> str:
    if isinstance(value, list):
        return "".join(str(v) for v in value)
    return value if isinstance(value, str) else json.dumps(value)


def _pre(text: str, css: str = "") -> str:
    klass = f' class="{css}"' if css else ""
    return f"<pre{klass}>{html.escape(_ANSI.sub('', text))}</pre>"


def _table(table: dict[str, Any]) -> str:
    """A table output (schema and rows) as an escaped HTML table."""
    schema = table.get("schema")
    rows = table.get("data")
    schema = schema if isinstance(schema, list) else []
    rows = rows if isinstance(rows, list) else []
    head = "".join(
        f"<th>{html.escape(str(f.get('name', '')) if isinstance(f, dict) else str(f))}</th>"
        for f in schema
    )
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_cell_text(v))}</td>" for v in row) + "</tr>"
        for row in rows
        if isinstance(row, list)
    )
    note = '<p class="note">Showing the first rows only.</p>' if table.get("truncated") else ""
    return f'<table class="table"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{note}'


def _cell_text(value: Any) -> str:
    if value is None:
        return "null"
    return value if isinstance(value, str) else json.dumps(value)


def _rich(data: dict[str, Any]) -> str:
    if isinstance(data.get(TABLE_MIME), dict):
        return _table(data[TABLE_MIME])
    for mime in _IMAGES:
        if isinstance(data.get(mime), str):
            payload = "".join(data[mime].split())
            return f'<img alt="" src="data:{mime};base64,{html.escape(payload)}">'
    if isinstance(data.get("image/svg+xml"), str | list):
        encoded = base64.b64encode(_text(data["image/svg+xml"]).encode()).decode()
        return f'<img alt="" src="data:image/svg+xml;base64,{encoded}">'
    if "text/html" in data:
        page = _text(data["text/html"])
        # No scripts, no same-origin: the output cannot reach the page or its viewer.
        rows = page.count("<tr")
        height = min(80 + 28 * rows, 640) if rows else 160
        return (
            f'<iframe sandbox="" style="height:{height}px" '
            f'srcdoc="{html.escape(page, quote=True)}"></iframe>'
        )
    if "text/markdown" in data:
        return f'<div class="markdown">{render_markdown(_text(data["text/markdown"]))}</div>'
    if "text/plain" in data:
        return _pre(_text(data["text/plain"]))
    return ""


def _output(output: dict[str, Any]) -> str:
    kind = output.get("output_type")
    if kind == "stream":
        return _pre(
            _text(output.get("text", "")), "stderr" if output.get("name") == "stderr" else ""
        )
    if kind in ("display_data", "execute_result"):
        data = output.get("data")
        return _rich(data) if isinstance(data, dict) else ""
    if kind == "error":
        trace = output.get("traceback")
        lines = [_text(t) for t in trace] if isinstance(trace, list) and trace else []
        body = "\n".join(lines) or f"{output.get('ename', 'Error')}: {output.get('evalue', '')}"
        return _pre(body, "error")
    return ""


def _cell(cell: dict[str, Any]) -> str:
    meta = cell.get("metadata", {}).get("application/vnd.databricks.v1+cell", {})
    title = meta.get("title") if isinstance(meta, dict) else ""
    heading = f'<h6 class="title">{html.escape(title)}</h6>' if title else ""
    source = _text(cell.get("source", ""))
    if cell.get("cell_type") == "markdown":
        rendered = render_markdown(source)
        return f'<div class="cell">{heading}<div class="markdown">{rendered}</div></div>'
    count = cell.get("execution_count")
    badge = f'<span class="count">[{count}]</span>' if count is not None else ""
    outputs = "".join(_output(o) for o in cell.get("outputs", []) if isinstance(o, dict))
    body = f"<pre><code>{html.escape(source)}</code></pre>"
    return f'<div class="cell">{heading}{badge}{body}<div class="output">{outputs}</div></div>'


def notebook_html(ipynb: dict[str, Any], name: str) -> str:
    """A standalone HTML page of a run's notebook with its outputs."""
    model = json.dumps(
        to_dbc_model(from_jupyter(json.dumps(ipynb)), name, 0), separators=(",", ":")
    )
    encoded = base64.b64encode(quote(model, safe="!~*'()").encode()).decode()
    cells = "\n".join(_cell(c) for c in ipynb.get("cells", []) if isinstance(c, dict))
    return (
        '<!DOCTYPE html>\n<html>\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(name)} - Databricks</title>\n"
        f"<style>{_STYLE}</style>\n"
        f"<script>var __DATABRICKS_NOTEBOOK_MODEL = '{encoded}';</script>\n"
        f"</head>\n<body>\n<h1>{html.escape(name)}</h1>\n{cells}\n</body>\n</html>\n"
    )
