"""HTML export of a notebook, and its import back (the model is embedded as Databricks does).

Databricks' HTML export carries the notebook model as `__DATABRICKS_NOTEBOOK_MODEL = '<base64
of the URI-encoded JSON>'`; Kiln writes the same line, so an exported page imports back
losslessly. Every piece of notebook text is escaped; markdown gets a small, safe renderer
(headings, lists, fenced code, emphasis, inline code, http(s) links) and nothing else.
"""

from __future__ import annotations

import base64
import binascii
import html
import json
import re
from urllib.parse import quote, unquote

from kiln.errors import InvalidParameterValue
from kiln.workspace.notebook_formats import (
    Notebook,
    from_dbc_model,
    markdown_text,
    to_dbc_model,
)

__all__ = ["from_html", "to_html"]

_MODEL = re.compile(r"__DATABRICKS_NOTEBOOK_MODEL\s*=\s*'([A-Za-z0-9+/=\s]*)'")
_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2rem auto;
max-width:60rem;color:#1f2328;line-height:1.5}
.cell{border:1px solid #d0d7de;border-radius:6px;margin:1rem 0;padding:.75rem 1rem}
.cell h6.title{margin:0 0 .5rem;color:#57606a}
.lang{float:right;font-size:.75rem;color:#57606a;text-transform:uppercase}
pre{background:#f6f8fa;padding:.75rem;border-radius:6px;overflow-x:auto;margin:0}
code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
""".strip()


def _inline(text: str) -> str:
    out = html.escape(text, quote=True)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    out = re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", out)
    out = re.sub(r"(?<!\*)\*([^*]+)\*(?!\*)", r"<em>\1</em>", out)
    # Only http(s) links: a `javascript:` URL never becomes a link.
    return re.sub(r"\[([^\]]+)\]\((https?://[^\s)]+)\)", r'<a href="\2">\1</a>', out)


def _markdown(text: str) -> str:
    out: list[str] = []
    paragraph: list[str] = []
    items: list[str] = []
    code: list[str] | None = None

    def flush() -> None:
        if paragraph:
            out.append("<p>" + " ".join(_inline(p) for p in paragraph) + "</p>")
            paragraph.clear()
        if items:
            out.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in items) + "</ul>")
            items.clear()

    for line in text.split("\n"):
        if code is not None:
            if line.strip().startswith("```"):
                out.append("<pre><code>" + html.escape("\n".join(code)) + "</code></pre>")
                code = None
            else:
                code.append(line)
            continue
        stripped = line.strip()
        heading = re.match(r"^(#{1,6})\s+(.*)$", stripped)
        if stripped.startswith("```"):
            flush()
            code = []
        elif heading:
            flush()
            level = len(heading.group(1))
            out.append(f"<h{level}>{_inline(heading.group(2))}</h{level}>")
        elif re.match(r"^[-*+]\s+", stripped):
            if paragraph:
                flush()
            items.append(re.sub(r"^[-*+]\s+", "", stripped))
        elif not stripped:
            flush()
        else:
            if items:
                flush()
            paragraph.append(stripped)
    if code is not None:
        out.append("<pre><code>" + html.escape("\n".join(code)) + "</code></pre>")
    flush()
    return "\n".join(out)


def to_html(notebook: Notebook, name: str) -> str:
    """A standalone HTML page of the notebook, with its model embedded for re-import."""
    model = json.dumps(to_dbc_model(notebook, name, 0), separators=(",", ":"))
    encoded = base64.b64encode(quote(model, safe="!~*'()").encode()).decode()
    parts = []
    for cell in notebook.cells:
        language = cell.language(notebook.language)
        title = f'<h6 class="title">{html.escape(cell.title)}</h6>' if cell.title else ""
        if cell.magic == "md":
            body = f'<div class="markdown">{_markdown(markdown_text(cell.command))}</div>'
        else:
            body = (
                f'<span class="lang">{html.escape(language)}</span>'
                f'<pre><code class="language-{html.escape(language)}">'
                f"{html.escape(cell.command)}</code></pre>"
            )
        parts.append(f'<div class="cell">{title}{body}</div>')
    cells = "\n".join(parts)
    return (
        '<!DOCTYPE html>\n<html>\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(name)} - Databricks</title>\n"
        f"<style>{_STYLE}</style>\n"
        f"<script>var __DATABRICKS_NOTEBOOK_MODEL = '{encoded}';</script>\n"
        f"</head>\n<body>\n<h1>{html.escape(name)}</h1>\n{cells}\n</body>\n</html>\n"
    )


def from_html(text: str) -> Notebook:
    """The notebook embedded in an HTML export (Databricks' or Kiln's)."""
    match = _MODEL.search(text)
    if match is None:
        raise InvalidParameterValue("The HTML has no embedded Databricks notebook model.")
    try:
        decoded = base64.b64decode("".join(match.group(1).split()), validate=True).decode()
        model = json.loads(unquote(decoded))
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise InvalidParameterValue(f"The HTML's notebook model is corrupt: {exc}") from exc
    return from_dbc_model(model)
